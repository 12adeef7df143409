def fetch(x):
    return x
