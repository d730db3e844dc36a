"""Opens restored Data.fs files with ZODB itself (no ZEO) and prints, per
storage, its last TID and root['counter']: the quickstart checks that a
restored backup set is at the published point and coherent.

  check_restored.py NAME=PATH[,BLOBDIR] [NAME=PATH[,BLOBDIR] ...]

With a blob directory, root['blob'] (a Blob) is read too ("blob").
"""
import json
import sys

import ZODB
from ZODB.FileStorage import FileStorage


def main():
    out = {}
    for arg in sys.argv[1:]:
        name, _, path = arg.partition("=")
        path, _, blob_dir = path.partition(",")
        db = ZODB.DB(FileStorage(path, read_only=True, blob_dir=blob_dir or None))
        try:
            conn = db.open()
            root = conn.root()
            out[name] = {"last_tid": db.storage.lastTransaction().hex(), "counter": root.get("counter")}
            if blob_dir and "blob" in root:
                with root["blob"].open("r") as f:
                    out[name]["blob"] = f.read().decode()
            conn.close()
        finally:
            db.close()
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
