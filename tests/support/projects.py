"""A small entries project written into a temporary directory (registry tests build on it)."""

from __future__ import annotations

from pathlib import Path

ENTRY_FILE = """\
version: "1.0"
namespace: app
entries:
  - name: client
    kind: temporal.client
    address: ${env:TEMPORAL_ADDRESS:-localhost:7233}
  - name: worker
    kind: temporal.worker
    client: app:client
  - name: pricing
    kind: library.lua
    source: file://pricing.lua
    imports: {money: app:money}
  - name: money
    kind: library.lua
    source: file://money.lua
  - name: order_workflow
    kind: workflow.lua
    source: file://order_workflow.lua
    modules: [funcs]
    imports: {pricing: app:pricing}
    meta:
      temporal:
        workflow:
          worker: app:worker
"""


def write_project(root: Path, entry_file: str = ENTRY_FILE, **sources: str) -> Path:
    """Write an entries directory with the given YAML and Lua files."""
    entries = root / "entries"
    entries.mkdir(parents=True, exist_ok=True)
    (entries / "app.yaml").write_text(entry_file)
    defaults = {
        "pricing.lua": "local money = require('money')\n"
                       "return {total = function(x) return money.round(x) end}\n",
        "money.lua": "return {round = function(x) return math.floor(x) end}\n",
        "order_workflow.lua": "local function main(input) return input end\nreturn {main = main}\n",
    }
    for name, text in {**defaults, **{k.replace("_lua", ".lua"): v for k, v in sources.items()}}.items():
        (entries / name).write_text(text)
    return entries


#: The start of an entry file of namespace ``app`` with its client and worker (``client``, ``worker``):
#: tests append their own entries.
APP_HEADER = """\
version: "1.0"
namespace: app
entries:
  - {name: client, kind: temporal.client}
  - {name: worker, kind: temporal.worker, client: client}
"""

#: A project with one function.python entry whose handler is ``MODULE.handlers:charge`` (replace MODULE).
PYTHON_HANDLER_ENTRY_FILE = APP_HEADER + """\
  - name: charge
    kind: function.python
    handler: MODULE.handlers:charge
    meta: {temporal: {activity: {worker: worker}}}
"""

#: The handler module of PYTHON_HANDLER_ENTRY_FILE.
PYTHON_HANDLER = """\
def charge(order):
    return {"charged": order["total"]}
"""
