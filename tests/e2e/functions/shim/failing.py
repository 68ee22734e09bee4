import sys

print("partial output")
print("went wrong", file=sys.stderr)
sys.exit(2)
