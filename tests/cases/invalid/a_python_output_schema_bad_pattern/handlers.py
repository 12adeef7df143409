def run(value):
    return value
