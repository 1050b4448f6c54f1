"""Tell whether this Python already has the tools pinned in a requirements file.

Usage: python3 .ci/pins.py requirements-dev.txt

Every line must pin one distribution with == (extras allowed, e.g. moto[server]==5.2.3).
Exit 0 and print two words, the directory of this interpreter's console scripts and the
interpreter itself, when each pinned distribution is installed at exactly its version, with
the distributions its extras name and its console scripts. Otherwise exit 1 and say on
stderr what differs. The Makefile then builds .venv instead.
"""

import os
import re
import sys
import sysconfig
from importlib import metadata

PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[([A-Za-z0-9_,.\s-]*)\])?==([^\s;]+)")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def installed(name):
    try:
        return metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None


def check(path):
    problems = []
    scripts = sysconfig.get_path("scripts")
    with open(path, encoding="utf-8") as f:
        lines = [line.split("#", 1)[0].strip() for line in f]
    for line in filter(None, lines):
        m = PIN.fullmatch(line)
        if not m:
            problems.append("%s: %r is not a pin (name==version)" % (path, line))
            continue
        name, extras, want = m.groups()
        dist = installed(name)
        if dist is None:
            problems.append("%s is not installed" % name)
            continue
        if dist.version != want:
            problems.append("%s is %s, the pin is %s" % (name, dist.version, want))
            continue
        for extra in filter(None, (e.strip() for e in (extras or "").split(","))):
            marker = re.compile(r"extra\s*==\s*[\"']%s[\"']" % re.escape(extra))
            for req in dist.requires or []:
                if marker.search(req) and installed(NAME.match(req).group(0)) is None:
                    problems.append("%s[%s] needs %s" % (name, extra, NAME.match(req).group(0)))
        for ep in dist.entry_points:
            if ep.group == "console_scripts" and not os.path.exists(os.path.join(scripts, ep.name)):
                problems.append("%s: command %s is not in %s" % (name, ep.name, scripts))
    return scripts, problems


def main(argv):
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    scripts, problems = check(argv[0])
    if problems:
        for p in problems:
            print("%s: %s" % (sys.executable, p), file=sys.stderr)
        return 1
    print(scripts, sys.executable)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
