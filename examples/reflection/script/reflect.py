import json, sys  # noqa: E401
print(json.dumps(json.load(sys.stdin), indent=2))
