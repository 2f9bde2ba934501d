"""Reverse-mode exclusion: gitignore lines as gocryptfs 2.3 reads them, in the view and in mounts (§9.3)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from fuse_harness import assert_same_view, exact_manifest, mount_view
from gocryptfs_harness import (
    assert_same_tree,
    gocryptfs_init,
    gocryptfs_mount,
    make_interop_tree,
    run_cmd,
    tree_manifest,
)
from vault_factory import new_vault

from vaultsh.vault.config import CONF_NAME, REVERSE_CONF_NAME
from vaultsh.vault.errors import ExcludeError, ExitCode, FsError
from vaultsh.vault.keys import FormatOptions
from vaultsh.vault.reverse import ExcludeMatcher, ReverseView
from vaultsh.vault.vault import Vault

PASSWORD = "test"

# (patterns, plain path, hidden?) -- gocryptfs 2.3's reading of each line, which is not git's
# everywhere; every row was checked against the gocryptfs 2.3 binary.
MATCHES = [
    (["*.log"], "keep.log", True),
    (["*.log"], "a/c.log", True),
    (["*.log"], "a/b", False),
    (["*.log", "!keep.log"], "keep.log", False),
    (["*.log", "!keep.log"], "other.log", True),
    (["sub", "!sub/c.log"], "sub/c.log", False),  # un-hidden, yet unreachable below "sub"
    (["?1.txt"], "q1.txt", False),  # `?` is a literal character
    (["?1.txt"], "?1.txt", True),
    (["a/b"], "a/b", True),
    (["a/b"], "a/b/file", True),  # a match hides everything below
    (["a/b"], "x/a/b", True),  # a slash alone does not anchor
    (["a/b"], "a", False),
    (["/d"], "d", True),
    (["/d"], "dd/d", False),
    (["d"], "dd/d", True),
    (["d/"], "d", False),  # the directory itself stays listed, empty
    (["d/"], "d/f", True),
    (["a/**"], "a", True),
    (["a/**"], "ab", False),
    (["sub/*.log"], "sub/c.log", True),
    (["sub/*.log"], "sub/inner/c.log", False),
    (["sub/*.log"], "x/sub/c.log", False),  # "/" followed by "*." anchors
    (["sub/**/*.log"], "sub/c.log", True),
    (["sub/**/*.log"], "sub/inner/c.log", True),
    (["**/inner"], "sub/inner", True),
    (["[ab]"], "x/a", True),
    (["[ab]"], "ab", False),
    (["a+"], "aa", True),  # other characters keep their regular-expression meaning
    (["\\#x"], "#x", True),
    (["#x"], "#x", False),  # a comment
    ([" #x"], "x", True),  # blanks trimmed, then one leading # dropped
    (["sp "], "sp", True),  # trailing blanks trimmed
    (["*.txt\r"], "a.txt", True),  # CRLF files
    (["*.log", "!"], "sub/c.log", True),  # a bare "!" un-hides nothing
    (["*"], "", False),  # the root is never hidden
]


@pytest.mark.parametrize(("patterns", "path", "hidden"), MATCHES)
def test_matcher_reads_lines_like_gocryptfs(patterns: list[str], path: str, hidden: bool) -> None:
    assert ExcludeMatcher(patterns).matches(path) is hidden


def test_blank_and_comment_lines_match_nothing() -> None:
    matcher = ExcludeMatcher(["", "   ", "# a comment", "\r"])
    assert not matcher
    assert not matcher.matches("anything")


@pytest.mark.parametrize("pattern", ["[", "(", "a{2,1}", "trailing\\"])
def test_a_pattern_that_cannot_compile_is_exit_code_29(tmp_path: Path, pattern: str) -> None:
    with pytest.raises(ExcludeError) as e:
        ExcludeMatcher(["ok.txt", pattern])
    assert e.value.exit_code == ExitCode.EXCLUDE_ERROR
    assert int(e.value.exit_code) == 29
    assert pattern in str(e.value)
    assert "\n" not in str(e.value)
    assert "\\Z" not in str(e.value)  # told about the pattern, not the expression built around it
    with pytest.raises(ExcludeError):
        ReverseView.open(
            tmp_path, master_key=bytes(32), options=FormatOptions(aessiv=True), excludes=[pattern]
        )


def small_plain(root: Path) -> Path:
    for d in ("keep/deep", "secret/deeper", "logs"):
        (root / d).mkdir(parents=True, exist_ok=True)
    files = {
        "keep/a.txt": b"a\n",
        "keep/deep/b.txt": b"b\n",
        "keep/skip.log": b"log\n",
        "secret/key.txt": b"key\n",
        "secret/deeper/more.txt": b"more\n",
        "logs/keep.log": b"kept\n",
        "logs/other.log": b"dropped\n",
        "x" * 200: b"long name, excluded\n",
        "y" * 200: b"long name, kept\n",
        "gocryptfs.conf.bak": b"plain file\n",
    }
    for rel, data in files.items():
        (root / rel).write_bytes(data)
    new_vault.reverse_folder(root, PASSWORD)
    return root


EXCLUDES = ["/secret", "*.log", "!keep.log", "x" * 200]


def visible_plain_paths(view: ReverseView, cipher_dir: str = "") -> set[str]:
    out: set[str] = set()
    for e in view.listdir(cipher_dir):
        if e.plain is not None:
            out.add(e.plain)
            if e.kind == "dir":
                out |= visible_plain_paths(view, e.cipher_path)
    return out


def test_view_hides_excluded_paths_and_their_name_files(tmp_path: Path) -> None:
    plain = small_plain(tmp_path / "plain")
    full = ReverseView.open(plain, password=PASSWORD.encode())
    view = ReverseView.open(plain, password=PASSWORD.encode(), excludes=EXCLUDES)
    assert visible_plain_paths(view) == {
        "keep", "keep/a.txt", "keep/deep", "keep/deep/b.txt", "logs", "logs/keep.log", "y" * 200,
        "gocryptfs.conf.bak",
    }  # fmt: skip
    root = view.listdir("")
    assert sum(e.cipher_name.endswith(".name") for e in root) == 1  # only the kept long name's
    assert sum(e.cipher_name.endswith(".name") for e in full.listdir("")) == 2
    # Lookups of excluded entries, their .name files and anything below them give EPERM.
    by_plain = {e.plain: e for e in full.listdir("") if e.plain}
    long_excluded = by_plain["x" * 200]
    secret = by_plain["secret"]
    below = next(e for e in full.listdir(secret.cipher_path) if e.plain == "secret/key.txt")
    for cipher_path in (
        secret.cipher_path,
        below.cipher_path,
        long_excluded.cipher_path,
        long_excluded.cipher_path + ".name",
    ):
        with pytest.raises(FsError) as e:
            view.resolve(cipher_path)
        assert e.value.errno == errno.EPERM, cipher_path
    assert view.resolve(by_plain["y" * 200].cipher_path).plain == "y" * 200


@pytest.mark.parametrize("patterns", [["*"], ["*.conf"], [CONF_NAME, REVERSE_CONF_NAME], ["gocryptfs*"]])
def test_the_config_is_never_excluded(tmp_path: Path, patterns: list[str]) -> None:
    """A copy of the view must stay decryptable with the password, whatever is excluded."""
    plain = small_plain(tmp_path / "plain")
    view = ReverseView.open(plain, password=PASSWORD.encode(), excludes=patterns)
    names = {e.cipher_name: e for e in view.listdir("")}
    assert CONF_NAME in names
    conf = view.resolve(CONF_NAME)
    assert view.read(conf, 0, 1 << 20) == (plain / REVERSE_CONF_NAME).read_bytes()
    if patterns == ["*"]:
        assert set(names) == {CONF_NAME, "gocryptfs.diriv"}


def test_materialize_honours_excludes_and_round_trips(tmp_path: Path) -> None:
    plain = small_plain(tmp_path / "plain")
    view = ReverseView.open(plain, password=PASSWORD.encode(), excludes=EXCLUDES)
    view.materialize(tmp_path / "copy")
    vault = Vault.open(tmp_path / "copy", password=PASSWORD.encode())

    def walk(path: str = "") -> set[str]:
        out: set[str] = set()
        for e in vault.listdir(path):
            rel = f"{path}/{e.name}" if path else e.name
            out.add(rel)
            if e.is_dir:
                out |= walk(rel)
        return out

    assert walk() == visible_plain_paths(view)
    assert vault.read_file("logs/keep.log") == b"kept\n"


# ---------------------------------------------------------------------------------------------
# Against the real gocryptfs -reverse
# ---------------------------------------------------------------------------------------------

# Pattern lists given to gocryptfs as -exclude-wildcard; the interop tree has a file or a
# directory that each of them hides (or, for the negations, shows again).
WILDCARD_SETS = [
    ["*.txt"],
    ["sizes/size-4*", "!sizes/size-4096"],
    ["a/b", "links/"],
    ["**/c", "日本語"],
    ["modes/**", "empty-*"],
    ["sparse-?MiB", "/top-level-link"],  # gocryptfs's literal "?" hides nothing here
    ["*/*.md", "*wörld*"],
    ["long-ascii-name-*", "dir-ü*/inside.txt"],
]


@pytest.mark.gocryptfs
def test_matcher_table_agrees_with_gocryptfs(need_gocryptfs: None, tmp_path: Path) -> None:
    """Every row of MATCHES, asked of a plaintextnames gocryptfs -reverse mount."""
    paths = {path for _, path, _ in MATCHES if path}
    plain = tmp_path / "plain"
    for path in sorted(paths):
        target = plain / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if not any(other.startswith(path + "/") for other in paths):
            target.write_bytes(b"x")
    gocryptfs_init(plain, PASSWORD, "-reverse", "-plaintextnames")
    by_patterns: dict[tuple[str, ...], list[str]] = {}
    for patterns, path, _ in MATCHES:
        if path:
            by_patterns.setdefault(tuple(patterns), []).append(path)
    for lines, rows in by_patterns.items():
        matcher = ExcludeMatcher(lines)
        flags = [arg for p in lines for arg in ("-exclude-wildcard", p)]
        with gocryptfs_mount(plain, tmp_path / "mnt", PASSWORD, "-reverse", *flags) as mnt:
            for path in rows:
                parts = path.split("/")
                prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
                ours_visible = not any(matcher.matches(p) for p in prefixes)
                assert os.path.lexists(mnt / path) == ours_visible, (lines, path)


@pytest.mark.gocryptfs
def test_excluded_views_match_gocryptfs_reverse(need_gocryptfs: None, tmp_path: Path) -> None:
    plain = make_interop_tree(tmp_path / "plain")
    gocryptfs_init(plain, PASSWORD, "-reverse")
    full = exact_manifest(plain)
    for i, patterns in enumerate(WILDCARD_SETS):
        view = ReverseView.open(plain, password=PASSWORD.encode(), excludes=patterns)
        ours = tmp_path / f"ours-{i}"
        view.materialize(ours)
        assert len(visible_plain_paths(view)) < len(full) - 1, patterns  # something is hidden
        flags = [arg for p in patterns for arg in ("-exclude-wildcard", p)]
        with gocryptfs_mount(plain, tmp_path / "theirs", PASSWORD, "-reverse", *flags) as theirs:
            assert exact_manifest(ours) == exact_manifest(theirs), patterns


@pytest.mark.gocryptfs
def test_excluded_mount_matches_gocryptfs_and_round_trips(need_gocryptfs: None, tmp_path: Path) -> None:
    """-exclude PATH (anchored), -exclude-wildcard and -exclude-from, mounted side by side."""
    plain = make_interop_tree(tmp_path / "plain")
    gocryptfs_init(plain, PASSWORD, "-reverse")
    exclude_file = tmp_path / "excludes"
    exclude_file.write_text("# sizes to hide\nsizes/size-8*\n\n!sizes/size-8192\r\nbig-*\n")
    excludes = (
        "/a/b/c",  # -exclude a/b/c
        "*.md",  # -exclude-wildcard *.md
        *exclude_file.read_text().split("\n"),  # -exclude-from, split as gocryptfs does
    )
    flags = ("-exclude", "a/b/c", "-exclude-wildcard", "*.md", "-exclude-from", str(exclude_file))
    copy = tmp_path / "copy"
    with (
        gocryptfs_mount(plain, tmp_path / "theirs", PASSWORD, "-reverse", *flags) as theirs,
        mount_view(plain, tmp_path / "ours", PASSWORD, excludes=excludes) as ours,
    ):
        assert_same_view(ours, theirs)
        listed = set(os.listdir(ours))
        with pytest.raises(PermissionError):
            os.lstat(ours / _cipher_name(plain, "big-3MiB.bin"))
        assert CONF_NAME in listed
        run_cmd(["cp", "-a", ours, copy]).check()
    hidden = ["a/b/c", "big-3MiB.bin", "sizes/size-8191", "sizes/size-8193", "🗂 folder/naïve café.md"]
    expected = tree_manifest(plain, exclude=[REVERSE_CONF_NAME, *hidden])
    assert "sizes/size-8192" in expected
    with gocryptfs_mount(copy, tmp_path / "forward", PASSWORD) as forward:
        assert_same_tree(tree_manifest(forward), expected, "forward mount of the excluded view")


def _cipher_name(plain: Path, name: str) -> str:
    view = ReverseView.open(plain, password=PASSWORD.encode())
    return next(e.cipher_name for e in view.listdir("") if e.plain == name)
