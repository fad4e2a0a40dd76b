"""Check that the .deb's Depends covers every system library the bundle links to, and its glibc.

    python packaging/linux/check_deps.py dist/finetune-gui build/deb/.../DEBIAN/control
    python packaging/linux/check_deps.py --glibc dist/finetune-gui     # prints the glibc the bundle needs

Runs `ldd` on every shared library and executable in the bundle, keeps the libraries resolved outside it,
finds the Debian package of each (`dpkg -S`) and fails, naming library and package, when a package is not in
the control file's Depends. Libraries `ldd` cannot find on this machine are listed as warnings, with the files
that want them: those files (mostly optional Qt plugins, e.g. Wayland) cannot load until the library is there.
The bundle carries libraries from the build machine, so it needs at least that machine's glibc: the highest
GLIBC_2.N symbol version any file asks for must be within `libc6 (>= 2.N)` in Depends.
"""

from __future__ import annotations

import mmap
import os
import re
import subprocess
import sys
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ELF_MAGIC = b"\x7fELF"


def elf_files(bundle: Path) -> list[Path]:
    files = []
    for path in bundle.rglob("*"):
        if path.is_file() and not path.is_symlink() and (".so" in path.name or path.stat().st_mode & 0o111):
            with path.open("rb") as f:
                if f.read(4) == ELF_MAGIC:
                    files.append(path)
    return files


def linked_libraries(path: Path, search: str) -> list[tuple[str, str | None]]:
    """(soname, resolved path or None when not found) for each library ldd lists, searching `search` first as
    the bundle's launcher does (it puts _internal/ on LD_LIBRARY_PATH)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LD_LIBRARY_PATH": search}
    out = subprocess.run(["ldd", str(path)], capture_output=True, text=True, env=env).stdout
    libs = []
    for line in out.splitlines():
        m = re.match(r"\s*(\S+) => (not found|(\S+) \(0x[0-9a-f]+\))", line)
        if m:
            libs.append((m.group(1), None if m.group(2) == "not found" else m.group(3)))
    return libs


def glibc_needed(files: list[Path]) -> tuple[int, int]:
    """The highest GLIBC_2.N symbol version the files ask for, as (2, N)."""
    best = (2, 0)
    for path in files:
        with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            for minor in re.findall(rb"GLIBC_2\.(\d+)", data):
                best = max(best, (2, int(minor)))
    return best


def package_of(path: str) -> str | None:
    for candidate in (path, str(Path(path).resolve())):
        for variant in (candidate, re.sub(r"^/usr", "", candidate), "/usr" + candidate):
            out = subprocess.run(["dpkg", "-S", variant], capture_output=True, text=True)
            if out.returncode == 0:
                return out.stdout.split(":", 1)[0].strip()
    return None


def _depends_field(control: Path) -> str:
    m = re.search(r"^Depends:(.*(?:\n .*)*)", control.read_text(encoding="utf-8"), re.MULTILINE)
    return m.group(1).replace("\n", " ") if m else ""


def libc_minimum(control: Path) -> tuple[int, int] | None:
    m = re.search(r"libc6 \(>= 2\.(\d+)\)", _depends_field(control))
    return (2, int(m.group(1))) if m else None


def depends(control: Path) -> set[str]:
    names = set()
    for alternative in _depends_field(control).split(","):
        for part in alternative.split("|"):
            if part.strip():
                names.add(re.split(r"[\s(]", part.strip())[0])
    return names


def main(bundle: Path, control: Path) -> int:
    bundle = bundle.resolve()
    files = elf_files(bundle)
    system: dict[str, set[str]] = defaultdict(set)  # system library path -> bundle files that load it
    missing: dict[str, set[str]] = defaultdict(set)
    search = f"{bundle / '_internal'}:{bundle / '_internal' / 'torch' / 'lib'}"  # torch's are loaded by then
    with ThreadPoolExecutor(4) as pool:
        for path, libs in zip(files, pool.map(lambda p: linked_libraries(p, search), files)):
            rel = str(path.relative_to(bundle))
            for soname, resolved in libs:
                if resolved is None:
                    missing[soname].add(rel)
                elif not Path(resolved).resolve().is_relative_to(bundle):
                    system[resolved].add(rel)
    wanted = depends(control)
    packages: dict[str, set[str]] = defaultdict(set)
    unowned = []
    for lib in sorted(system):
        pkg = package_of(lib)
        if pkg is None:
            unowned.append(lib)
        else:
            packages[pkg.split(":")[0]].add(Path(lib).name)
    print(f"{len(files)} ELF files; {len(system)} system libraries from {len(packages)} packages")
    bad = 0
    for pkg in sorted(packages):
        ok = pkg in wanted
        bad += not ok
        print(f"  {'ok  ' if ok else 'MISSING FROM Depends:'} {pkg:<24} {' '.join(sorted(packages[pkg]))}")
    for lib in unowned:
        print(f"  warning: {lib} belongs to no Debian package (installed by hand?)")
    for soname in sorted(missing):
        users = sorted(missing[soname])
        print(
            f"  warning: {soname} is not on this machine; wanted by {', '.join(users[:3])}"
            f"{f' and {len(users) - 3} more' if len(users) > 3 else ''}"
        )
    glibc, declared = glibc_needed(files), libc_minimum(control)
    glibc_ok = declared is not None and declared >= glibc
    print(
        f"  {'ok  ' if glibc_ok else 'WRONG in Depends:'} glibc {glibc[0]}.{glibc[1]} is needed; Depends says "
        f"{f'libc6 (>= {declared[0]}.{declared[1]})' if declared else 'no libc6 version'}"
    )
    return 1 if bad or not glibc_ok else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--glibc":
        major, minor = glibc_needed(elf_files(Path(sys.argv[2]).resolve()))
        print(f"{major}.{minor}")
    elif len(sys.argv) == 3:
        sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
    else:
        sys.exit(__doc__)
