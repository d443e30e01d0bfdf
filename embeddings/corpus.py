"""Corpus ingestion: every supported source becomes a list of :class:`Document`.

Sources (the ``source`` argument of :func:`read_corpus`):

``"default"``
    gensim's bundled Lee background corpus (``lee_background.cor``), one document per line.
``"wiki"``
    gensim's bundled excerpt of the English Wikipedia (106 articles, about 480k words), one
    document per article, markup stripped by :mod:`gensim.corpora.wikicorpus`.
``"20news"``
    20 Newsgroups from scikit-learn's local cache (never downloaded here).
a MediaWiki XML dump (``.xml.bz2``)
    read as ``"wiki"`` is.
a ``20news-bydate`` archive (``.tar.gz``) or its extracted folder
    read member by member, without extracting to disk.
any other folder
    every ``.txt`` file below it, recursively, one document each.
any other file
    plain text: documents are separated by blank lines; a file with no blank line between two
    lines of text holds one document per line (as gensim's Lee corpus does).
"""

from __future__ import annotations

import logging
import os
import re
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from embeddings.newsgroups import REMOVABLE, strip_newsgroup_parts
from embeddings.store.errors import SeqaeError

log = logging.getLogger(__name__)

WIKI_EXCERPT = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
BYDATE_SPLITS = {"20news-bydate-train": "train", "20news-bydate-test": "test"}
NEWSGROUP_KINDS = ("20news", "20news-archive", "20news-folder")
# The file fetch_20newsgroups keeps in scikit-learn's data home (its name since scikit-learn 0.20),
# named here so that resolving the source does not load it.
SKLEARN_20NEWS_CACHE = "20news-bydate_py3.pkz"

_BINARY_PROBE_BYTES = 1024


@dataclass(frozen=True)
class Document:
    """One document of a corpus.

    ``doc_id`` is stable and unique within the corpus (e.g. ``"train/alt.atheism/49960"`` or a path
    relative to the corpus root); ``split`` is ``"train"``/``"test"`` when the source fixes it
    (20 Newsgroups bydate), else ``None``; ``group`` is the newsgroup name, else ``None``.
    """

    doc_id: str
    text: str
    split: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class Source:
    """A resolved corpus source: its ``kind`` and the file or folder it reads."""

    # "default", "wiki", "20news", "20news-archive", "20news-folder", "text-folder", "text-file"
    kind: str
    path: Path

    def describe(self) -> dict:
        """Kind, path, size (bytes) and latest mtime (ns): a cheap fingerprint for cache keys."""
        if self.path.is_dir():
            stats = [path.stat() for path, _ in _FOLDER_FILES[self.kind](self.path)]
        else:
            stats = [self.path.stat()]
        return {
            "kind": self.kind, "path": str(self.path), "files": len(stats),
            "size": sum(s.st_size for s in stats),
            "mtime_ns": max((s.st_mtime_ns for s in stats), default=0),
        }


def resolve_source(source: str) -> Source:
    """Work out which kind of corpus ``source`` names; :class:`SeqaeError` if it does not exist."""
    if source == "default":
        from gensim.test.utils import datapath

        return Source("default", Path(datapath("lee_background.cor")))
    if source == "wiki":
        from gensim.test.utils import datapath

        return Source("wiki", Path(datapath(WIKI_EXCERPT)))
    if source == "20news":
        from sklearn.datasets import get_data_home

        cache = Path(get_data_home()) / SKLEARN_20NEWS_CACHE
        if not cache.is_file():
            raise SeqaeError(
                f"20 Newsgroups is not in scikit-learn's cache ({cache}) and seqae never downloads; "
                "pass the 20news-bydate.tar.gz archive or its extracted folder instead"
            )
        return Source("20news", cache)
    if not source.strip():
        raise SeqaeError("--corpus must name a corpus, not an empty string")
    path = Path(source).expanduser()
    if not path.exists():
        raise SeqaeError(f"corpus not found: {path}")
    path = path.resolve()
    if not (path.is_dir() or path.is_file()):  # a FIFO or device would block or never end
        raise SeqaeError(f"corpus {path} is not a regular file or folder")
    if path.is_dir():
        if path.name in BYDATE_SPLITS or any((path / name).is_dir() for name in BYDATE_SPLITS):
            return Source("20news-folder", path)
        return Source("text-folder", path)
    if path.name.endswith(".xml.bz2"):
        return Source("wiki", path)
    if tarfile.is_tarfile(path):
        return Source("20news-archive", path)
    return Source("text-file", path)


def read_corpus(source: str, remove: tuple[str, ...] | None = None) -> tuple[list[Document], dict]:
    """Read every document of ``source`` (see the module docstring for the kinds).

    ``remove`` has scikit-learn's meaning (any of ``"headers"``, ``"footers"``, ``"quotes"``),
    applied with scikit-learn's own strip functions; ``None`` means all three for 20 Newsgroups
    sources and nothing for the others. Text files are decoded as UTF-8 (falling back to latin-1,
    counted), 20 Newsgroups posts as latin-1. Documents left empty (whitespace only) are dropped
    and counted.

    Returns the documents in a stable order (lines in file order; files by relative path;
    newsgroup posts train before test, then by group and post number) and a report
    ``{"kind", "path", "remove", "documents", "decode_fallbacks", "empty_documents"}``.
    """
    resolved = resolve_source(source)
    remove = resolve_remove(resolved.kind, remove)
    reader = _READERS[resolved.kind]
    decoder = _Decoder(latin1=resolved.kind in NEWSGROUP_KINDS)
    docs, empty = [], 0
    for doc in reader(resolved.path, decoder):
        text = strip_newsgroup_parts(doc.text, remove)
        if text.strip():
            docs.append(replace(doc, text=text))
        else:
            empty += 1
    if not docs:
        what = "no documents" if not empty else f"only empty documents ({empty})"
        raise SeqaeError(f"corpus {resolved.path} has {what}")
    report = {
        "kind": resolved.kind, "path": str(resolved.path), "remove": list(remove),
        "documents": len(docs), "decode_fallbacks": decoder.fallbacks, "empty_documents": empty,
    }
    log.info("read %d documents from %s (%s); %d empty dropped, %d decoded as latin-1",
             len(docs), resolved.path, resolved.kind, empty, decoder.fallbacks)
    return docs, report


def resolve_remove(kind: str, remove: Iterable[str] | None) -> tuple[str, ...]:
    """The parts to strip: ``remove`` checked, or by default all of them for 20 Newsgroups
    ``kind``s and none otherwise."""
    if remove is None:
        return REMOVABLE if kind in NEWSGROUP_KINDS else ()
    return check_remove(remove)


def check_remove(remove: Iterable[str]) -> tuple[str, ...]:
    """``remove`` as a tuple in scikit-learn's order; :class:`SeqaeError` for an unknown part."""
    remove = tuple(remove)
    unknown = sorted(set(remove) - set(REMOVABLE))
    if unknown:
        raise SeqaeError(f"cannot remove {', '.join(unknown)}: choose from {', '.join(REMOVABLE)}")
    return tuple(part for part in REMOVABLE if part in remove)


class _Decoder:
    """Bytes to text with uniform ``\\n`` newlines; refuses binary files and counts fallbacks."""

    def __init__(self, latin1: bool):
        self.latin1 = latin1
        self.fallbacks = 0

    def __call__(self, data: bytes, name: str) -> str:
        if b"\0" in data[:_BINARY_PROBE_BYTES]:
            raise SeqaeError(f"{name} looks binary (NUL bytes); seqae reads UTF-8 or latin-1 text")
        if self.latin1:
            text = data.decode("latin-1")
        else:
            try:
                text = data.decode("utf-8-sig")
            except UnicodeDecodeError:
                self.fallbacks += 1
                text = data.decode("latin-1")
        return text.replace("\r\n", "\n").replace("\r", "\n")


def _read_default(path: Path, decode: _Decoder) -> Iterator[Document]:
    # split("\n"), not splitlines(): form feeds and other separators stay inside their line.
    lines = decode(path.read_bytes(), str(path)).removesuffix("\n").split("\n")
    for number, line in enumerate(lines, start=1):
        yield Document(f"{path.name}:{number}", line)


def _read_wiki_dump(path: Path, decode: _Decoder) -> Iterator[Document]:
    import bz2

    from gensim.corpora.wikicorpus import extract_pages, filter_wiki

    try:
        with bz2.open(path) as dump:
            for title, markup, _ in extract_pages(dump, filter_namespaces=("0",)):  # articles
                if markup.lstrip().lower().startswith("#redirect"):
                    continue
                # filter_wiki keeps the quote marks of bold and italic text.
                text = filter_wiki(markup).replace("'''", "").replace("''", "")
                yield Document(f"{path.name}:{title}", text)
    except (OSError, EOFError, ValueError, SyntaxError) as exc:  # bz2, and expat's ParseError
        raise SeqaeError(f"cannot read MediaWiki dump {path}: {exc}") from None


def _read_text_file(path: Path, decode: _Decoder) -> Iterator[Document]:
    """Blank-line separated documents, or one a line where no line is blank."""
    text = decode(path.read_bytes(), str(path)).strip()  # blank lines at the ends separate nothing
    lines = text.splitlines()
    if any(not line.strip() for line in lines):
        blocks = [block.strip() for block in re.split(r"\n\s*\n", "\n".join(lines))]
        for number, block in enumerate(filter(None, blocks), 1):
            yield Document(f"{path.name}:{number}", block)
    else:
        for number, line in enumerate(lines, 1):
            yield Document(f"{path.name}:{number}", line)


def _read_text_folder(root: Path, decode: _Decoder) -> Iterator[Document]:
    files = _txt_files(root)
    if not files:
        raise SeqaeError(f"no .txt files in {root}")
    for path, rel in files:
        yield Document(rel, decode(path.read_bytes(), str(path)))


def _read_bydate_folder(root: Path, decode: _Decoder) -> Iterator[Document]:
    docs = [_bydate_document(name, decode(path.read_bytes(), str(path))) for path, name in _bydate_files(root)]
    if not docs:
        raise SeqaeError(f"no 20news-bydate posts in {root}")
    yield from sorted(docs, key=_bydate_order)


def _read_bydate_archive(path: Path, decode: _Decoder) -> Iterator[Document]:
    docs = []
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:  # sequential: a gzip stream has no random access
                if member.isfile() and _is_bydate_post(member.name):
                    data = archive.extractfile(member).read()
                    docs.append(_bydate_document(member.name, decode(data, f"{path}:{member.name}")))
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise SeqaeError(f"cannot read archive {path}: {exc}") from None
    if not docs:
        raise SeqaeError(f"no 20news-bydate-train/-test posts in {path}")
    yield from sorted(docs, key=_bydate_order)


def _read_sklearn_cache(path: Path, decode: _Decoder) -> Iterator[Document]:
    from sklearn.datasets import fetch_20newsgroups

    # scikit-learn's cache holds the posts already decoded (latin-1), so ``decode`` has no work.
    try:
        bunch = fetch_20newsgroups(subset="all", remove=(), shuffle=False, download_if_missing=False)
    except OSError as exc:
        raise SeqaeError(f"cannot load 20 Newsgroups from scikit-learn's cache {path}: {exc}") from None
    docs = [_bydate_document(name, text) for name, text in zip(bunch.filenames, bunch.data)]
    yield from sorted(docs, key=_bydate_order)


def _txt_files(root: Path) -> list[tuple[Path, str]]:
    return _walk_files(root, lambda rel: rel.lower().endswith(".txt"))


def _bydate_files(root: Path) -> list[tuple[Path, str]]:
    """Posts below a bydate folder, named ``20news-bydate-<split>/<group>/<id>``."""
    # The folder may be the parent of the split folders or one split folder itself.
    prefix = root.name + "/" if root.name in BYDATE_SPLITS else ""
    return [(path, prefix + rel) for path, rel in _walk_files(root, lambda rel: _is_bydate_post(prefix + rel))]


def _is_bydate_post(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return len(parts) >= 3 and parts[-3] in BYDATE_SPLITS


def _bydate_document(name: str, text: str) -> Document:
    *_, split_dir, group, post = PurePosixPath(str(name).replace(os.sep, "/")).parts
    split = BYDATE_SPLITS[split_dir]
    return Document(f"{split}/{group}/{post}", text, split, group)


def _bydate_order(doc: Document) -> tuple:
    post = doc.doc_id.rsplit("/", 1)[1]
    return (doc.split != "train", doc.group, int(post) if post.isdigit() else 0, post)


def _walk_files(root: Path, keep: Callable[[str], bool]) -> list[tuple[Path, str]]:
    """Files below ``root`` whose relative POSIX path passes ``keep``, sorted by that path.

    Symlinked folders are followed once each, so a link back up the tree cannot loop.
    """
    seen: set[tuple[int, int]] = set()
    found = []
    for folder, dirs, files in os.walk(root, followlinks=True):
        stat = os.stat(folder)
        if (stat.st_dev, stat.st_ino) in seen:
            dirs[:] = []
            continue
        seen.add((stat.st_dev, stat.st_ino))
        for name in files:
            path = Path(folder, name)
            rel = path.relative_to(root).as_posix()
            if keep(rel) and path.is_file():
                found.append((path, rel))
    return sorted(found, key=lambda item: item[1])


_READERS: dict[str, Callable[[Path, _Decoder], Iterator[Document]]] = {
    "default": _read_default,
    "wiki": _read_wiki_dump,
    "20news": _read_sklearn_cache,
    "20news-archive": _read_bydate_archive,
    "20news-folder": _read_bydate_folder,
    "text-folder": _read_text_folder,
    "text-file": _read_text_file,
}
_FOLDER_FILES = {"20news-folder": _bydate_files, "text-folder": _txt_files}
