"""The read-bandwidth floor of a model folder: every .safetensors file read once, in 64 MiB
reads, as fast as this machine's disk and page cache allow. Prints one JSON line.

  python3 scripts/device/read_floor.py MODEL_DIR
"""
import json
import os
import sys
import time


def main():
    folder = sys.argv[1]
    files = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".safetensors"))
    buf = bytearray(64 << 20)
    view = memoryview(buf)
    total = 0
    t0 = time.perf_counter()
    for path in files:
        with open(path, "rb", buffering=0) as f:
            while True:
                n = f.readinto(view)
                if not n:
                    break
                total += n
    seconds = time.perf_counter() - t0
    print(json.dumps({"bytes": total, "seconds": seconds, "gb_per_s": total / seconds / 1e9}))


if __name__ == "__main__":
    main()
