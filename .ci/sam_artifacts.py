"""Check what `sam build` produced: one arm64 Lambda bootstrap per function of the template.

Usage: python3 .ci/sam_artifacts.py template.yaml .aws-sam/build MAX_MIB

Every AWS::Serverless::Function of the template must have <build>/<LogicalId>/bootstrap: an
executable ELF file for aarch64 (what provided.al2023 on arm64 runs), smaller than MAX_MIB.
Prints one line per function; exits 1 naming each problem.
"""

import os
import struct
import sys

from cfnlint.decode import decode

EM_AARCH64 = 183


def elf_machine(path):
    with open(path, "rb") as f:
        head = f.read(20)
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    order = "<" if head[5] == 1 else ">"
    return struct.unpack(order + "H", head[18:20])[0]


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    template, build, max_mib = argv[0], argv[1], float(argv[2])
    tpl, matches = decode(template)
    if matches:
        print("%s: %s" % (template, "; ".join(str(m) for m in matches)), file=sys.stderr)
        return 1
    functions = sorted(
        lid for lid, r in (tpl.get("Resources") or {}).items() if r.get("Type") == "AWS::Serverless::Function"
    )
    if not functions:
        print("%s defines no AWS::Serverless::Function" % template, file=sys.stderr)
        return 1
    problems = []
    for lid in functions:
        path = os.path.join(build, lid, "bootstrap")
        if not os.path.isfile(path):
            problems.append("%s: missing" % path)
            continue
        size = os.path.getsize(path)
        machine = elf_machine(path)
        if machine != EM_AARCH64:
            problems.append("%s: not an aarch64 ELF executable (machine %s)" % (path, machine))
        if not os.access(path, os.X_OK):
            problems.append("%s: not executable" % path)
        if size >= max_mib * 1024 * 1024:
            problems.append("%s: %.1f MiB, the limit is %g MiB" % (path, size / 1048576, max_mib))
        print("%-48s %5.1f MiB" % (path, size / 1048576))
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    print("%d functions, each an arm64 bootstrap under %g MiB" % (len(functions), max_mib))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
