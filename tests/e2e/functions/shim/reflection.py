import json

print(json.dumps(json.loads(input()), indent=2))
