"""JSON Schemas (draft 2020-12) for flowctl entry files, one per entry kind.

A package only so the schema files ship inside the wheel and load with
``importlib.resources`` wherever flowctl is installed.
"""
