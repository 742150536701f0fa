"""The reports as a static web site: ``python -m replication site`` (``make site``).

What the site holds:

- ``index.html``: ``reports/README.md``, the index of claims that ``replication.claims.report.render_index``
  writes, rendered from its Markdown (mistune, the parser nbconvert ships with), each status and kind
  coloured, each report link pointing at that report's page;
- ``<profile>/<notebook>.html``: every executed report notebook ``reports/<profile>/NN_topic.ipynb``,
  converted by nbconvert in JupyterLab's look, its figures embedded in the page, with a link back to the
  index; the notebook itself and its claims JSON lie beside it.

It works from ``file://`` and offline: every link is relative, and nothing is loaded from the network
(nbconvert's require.js, MathJax and mermaid scripts are left out: the report notebooks output PNG, HTML
tables and text only; a LaTeX formula in a markdown cell would show as its source).

The site is built in a partial folder beside its destination and swapped in whole
(``replication.paths.atomic_dir``), and only after :func:`link_problems` has found the target of every
link and image of every page. A folder that this command did not build (it lacks ``.replication-site``)
is never replaced.
"""

from __future__ import annotations

import html
import posixpath
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterable, Sequence
from urllib.parse import unquote, urlsplit

from replication.claims.registry import KINDS
from replication.claims.rules import STATUSES
from replication.paths import REPO, atomic_dir, remove_stale_partials

REPORTS_DIR = REPO / "reports"
DEFAULT_SITE_DIR = REPO / "site"
INDEX_SOURCE = "README.md"  # reports/README.md, the index of claims
SITE_MARKER = ".replication-site"  # marks a folder this module built, which a rebuild may replace


class SiteError(ValueError):
    """The site cannot be built as asked; the message names the problem and the fix."""


# ---------------------------------------------------------------------------
# What goes in
# ---------------------------------------------------------------------------

def report_notebooks(reports_dir: Path, profiles: Sequence[str] | None = None) -> list[Path]:
    """The executed report notebooks ``reports_dir/<profile>/*.ipynb``, of ``profiles`` (default: all)."""
    reports_dir = Path(reports_dir)
    found = [p for p in sorted(reports_dir.glob("*/*.ipynb"))
             if not p.parent.name.startswith(".") and not p.name.startswith(".")]
    available = sorted({p.parent.name for p in found})
    unknown = [p for p in profiles or () if p not in available]
    if unknown:
        raise SiteError(f"no executed report notebooks for profile {', '.join(unknown)} under {reports_dir} "
                        f"(profiles with reports: {', '.join(available) or 'none'}); "
                        f"run `python -m replication reproduce --profile {unknown[0]}` first")
    return [p for p in found if not profiles or p.parent.name in profiles]


def read_index_source(reports_dir: Path) -> str:
    """The text of ``reports_dir/README.md``, the index of claims."""
    path = Path(reports_dir) / INDEX_SOURCE
    if not path.is_file():
        raise SiteError(f"{path} is missing: regenerate it with `python -m replication reproduce --index-only`")
    return path.read_text(encoding="utf-8")


def page_path(notebook: Path) -> str:
    """Where a report's page lies in the site: ``<profile>/<notebook>.html``."""
    return f"{notebook.parent.name}/{notebook.stem}.html"


# ---------------------------------------------------------------------------
# The report pages (nbconvert)
# ---------------------------------------------------------------------------

# JupyterLab's template less what it loads from the network, plus a bar of links back to the index.
_REPORT_TEMPLATE_NAME = "replication_report.html.j2"
_REPORT_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{% block extra_css %}<style type="text/css">
nav.site-nav { font: 14px/1.5 system-ui, sans-serif; padding: 8px 16px; margin-bottom: 8px;
  border-bottom: 1px solid #ddd; background: #f7f7f7; }
nav.site-nav a { margin-right: 1.2em; color: #0645ad; text-decoration: underline; }
</style>{% endblock extra_css %}
{%- block body_header -%}
{{ super() }}
<nav class="site-nav">
<a href="{{ resources.site.index_href }}">&larr; All reports</a>
<strong>{{ resources.site.title }}</strong>
<a href="{{ resources.site.notebook_href }}" download>notebook (.ipynb)</a>
{%- if resources.site.claims_href %}
<a href="{{ resources.site.claims_href }}" download>claims (.json)</a>
{%- endif %}
</nav>
{%- endblock body_header -%}
"""


def report_exporter():
    """An nbconvert HTML exporter with the site's template (JupyterLab's look, nothing from the network)."""
    import jinja2
    from nbconvert import HTMLExporter

    return HTMLExporter(template_name="lab", template_file=_REPORT_TEMPLATE_NAME,
                        extra_loaders=[jinja2.DictLoader({_REPORT_TEMPLATE_NAME: _REPORT_TEMPLATE})])


def write_report_page(exporter, notebook: Path, site_dir: Path) -> Path:
    """Convert one executed notebook to ``<profile>/<notebook>.html`` in ``site_dir``, and copy the notebook
    and its claims JSON beside the page."""
    folder = Path(site_dir) / notebook.parent.name
    folder.mkdir(parents=True, exist_ok=True)
    claims = notebook.with_suffix(".json")
    title = f"{notebook.stem} ({notebook.parent.name})"
    resources = {"metadata": {"name": title},
                 "site": {"index_href": "../index.html", "title": title, "notebook_href": notebook.name,
                          "claims_href": claims.name if claims.is_file() else None}}
    import nbformat

    body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4), resources=resources)
    page = folder / f"{notebook.stem}.html"
    page.write_text(body, encoding="utf-8")
    shutil.copy2(notebook, folder / notebook.name)
    if claims.is_file():
        shutil.copy2(claims, folder / claims.name)
    return page


# ---------------------------------------------------------------------------
# The index page (reports/README.md)
# ---------------------------------------------------------------------------

def status_class(status: str) -> str:
    """'partly reproduced' -> 'status-partly-reproduced' (the CSS class of its colour)."""
    return "status-" + status.replace(" ", "-")


_INDEX_CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; padding: 0 24px 48px;
  max-width: 1600px; color: #222; }
h1, h2 { font-weight: 600; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
code { font-size: 90%; background: #f3f3f3; padding: 0 3px; border-radius: 3px; }
table { border-collapse: collapse; font-size: 13px; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; vertical-align: top; text-align: left; }
thead td, th { background: #eee; font-weight: 600; }
nav.pages { background: #f7f7f7; border: 1px solid #ddd; padding: 8px 16px; margin: 1em 0; }
nav.pages a { margin-right: 1em; }
.not-in-site { color: #777; }
td.status-reproduced, em.status-reproduced { background: #c8e6c9; color: #1b5e20; }
td.status-partly-reproduced, em.status-partly-reproduced { background: #fff59d; color: #6d5d00; }
td.status-not-reproduced, em.status-not-reproduced { background: #ffcdd2; color: #b71c1c; }
td.status-inconclusive, em.status-inconclusive { background: #bbdefb; color: #0d47a1; }
td.status-not-evaluated, em.status-not-evaluated { background: #e0e0e0; color: #424242; }
em[class^="status-"] { font-style: normal; padding: 0 4px; border-radius: 3px; }
td[class^="status-"] { font-weight: 600; white-space: nowrap; }
td.kind-claim { color: #0d47a1; } td.kind-check { color: #555; }
td.kind-erratum { color: #6a1b9a; font-weight: 600; } td.kind-variant { color: #00695c; }
footer { margin-top: 3em; color: #777; font-size: 13px; }
"""


def _index_renderer(pages: set[str]):
    """A mistune HTML renderer that colours status and kind cells, and points report links at the pages
    (a link to a report that is not in the site becomes plain text)."""
    import mistune

    statuses = {html.escape(s): s for s in STATUSES}

    class IndexRenderer(mistune.HTMLRenderer):
        def table_cell(self, text: str, align=None, head: bool = False) -> str:
            tag = "th" if head else "td"
            value = text.strip()
            css = (status_class(statuses[value]) if value in statuses and not head
                   else f"kind-{value}" if value in KINDS and not head else None)
            attribute = f' class="{css}"' if css else ""
            return f"<{tag}{attribute}>{text}</{tag}>\n"

        def emphasis(self, text: str) -> str:
            css = f' class="{status_class(statuses[text])}"' if text in statuses else ""
            return f"<em{css}>{text}</em>"

        def link(self, text: str, url: str, title: str | None = None) -> str:
            target = site_link(url, pages)
            if target is None:
                return f'<span class="not-in-site" title="not in this site">{text}</span>'
            return super().link(text, target, title)

    return mistune.create_markdown(renderer=IndexRenderer(), plugins=["table"])


def site_link(url: str, pages: set[str]) -> str | None:
    """Where a link of reports/README.md points in the site: a report notebook's page, an external URL
    as it is, or None for a relative target the site does not hold."""
    parts = urlsplit(url)
    if parts.scheme or url.startswith("#"):
        return url
    path = posixpath.normpath(unquote(parts.path))
    if path.endswith(".ipynb"):
        path = path[: -len(".ipynb")] + ".html"
    if path not in pages:
        return None
    return path + (f"#{parts.fragment}" if parts.fragment else "")


def index_page(markdown_text: str, pages: Iterable[str]) -> str:
    """The HTML of ``index.html``: the list of report pages, then reports/README.md rendered."""
    pages = sorted(pages)
    by_profile: dict[str, list[str]] = {}
    for page in pages:
        by_profile.setdefault(page.split("/")[0], []).append(page)
    links = "<br>\n".join(
        f"<strong>{html.escape(profile)}</strong>: "
        + " ".join(f'<a href="{html.escape(p)}">{html.escape(Path(p).stem)}</a>' for p in profile_pages)
        for profile, profile_pages in by_profile.items())
    body = _index_renderer(set(pages))(markdown_text)
    if 'class="not-in-site"' in body:
        links += ("<br>\n<small>Reports not in this site are listed without links: "
                  "<code>python -m replication site</code> with no <code>--profile</code> builds them all.</small>")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1.0\">\n"
        "<title>Reports: AlexNet (Krizhevsky et al., 2012), replicated claim by claim</title>\n"
        f"<style>{_INDEX_CSS}</style>\n</head>\n<body>\n"
        f"<nav class=\"pages\">Report pages<br>\n{links or 'none: no executed report notebooks'}</nav>\n"
        f"{body}\n"
        "<footer>Rendered from <code>reports/README.md</code> and the executed notebooks under "
        "<code>reports/&lt;profile&gt;/</code> by <code>python -m replication site</code>.</footer>\n"
        "</body>\n</html>\n")


# ---------------------------------------------------------------------------
# Checking a built site: every link and image resolves inside it
# ---------------------------------------------------------------------------

class _References(HTMLParser):
    """The URLs a page links to (a, area) and loads (img, script, link, source, iframe...)."""

    LOADED = {"img": "src", "script": "src", "source": "src", "iframe": "src", "embed": "src",
              "link": "href", "video": "src", "audio": "src"}
    LINKED = {"a": "href", "area": "href"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.loaded: list[str] = []
        self.linked: list[str] = []

    def handle_starttag(self, tag: str, attrs) -> None:
        values = dict(attrs)
        if tag in self.LOADED and values.get(self.LOADED[tag]):
            self.loaded.append(values[self.LOADED[tag]])
        if tag in self.LINKED and values.get(self.LINKED[tag]):
            self.linked.append(values[self.LINKED[tag]])


def page_references(page: Path) -> tuple[list[str], list[str]]:
    """(loaded, linked): the URLs of what a page loads and of what it links to."""
    parser = _References()
    parser.feed(Path(page).read_text(encoding="utf-8"))
    return parser.loaded, parser.linked


def link_problems(site_dir: Path) -> list[str]:
    """What is wrong with the links of a built site: a resource loaded from the network, a link that is not
    relative, or a relative target missing from the site (or outside it)."""
    site_dir = Path(site_dir).resolve()
    problems = []
    for page in sorted(site_dir.rglob("*.html")):
        name = page.relative_to(site_dir).as_posix()
        loaded, linked = page_references(page)
        for url, kind in [(u, "loads") for u in loaded] + [(u, "links to") for u in linked]:
            parts = urlsplit(url)
            if parts.scheme == "data" or url.startswith("#"):
                continue
            if parts.scheme in ("http", "https", "mailto") and kind == "links to":
                continue  # an external link: the page still works offline
            if parts.scheme or parts.netloc or url.startswith("/"):
                problems.append(f"{name} {kind} {url}: not a relative link")
                continue
            target = (page.parent / unquote(parts.path)).resolve()
            if not target.is_relative_to(site_dir):
                problems.append(f"{name} {kind} {url}: outside the site")
            elif not target.exists():
                problems.append(f"{name} {kind} {url}: no such file in the site")
    return problems


# ---------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------

def check_replaceable(out: Path) -> None:
    """Refuse to replace a folder that this module did not build: ``out`` must be absent, empty, or hold
    the site marker."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SiteError(f"{out} is a file, not a site folder: choose another --out")
    if out.is_dir() and any(out.iterdir()) and not (out / SITE_MARKER).is_file():
        raise SiteError(f"{out} is not a site built by `python -m replication site` (no {SITE_MARKER} in it), "
                        "so it is left alone: choose another --out, or empty that folder yourself")


def build_site(reports_dir: Path = REPORTS_DIR, out: Path = DEFAULT_SITE_DIR,
               profiles: Sequence[str] | None = None, progress: bool = True) -> Path:
    """Render ``reports_dir/README.md`` and the executed notebooks of ``profiles`` (default: all) into the
    static site ``out``, replacing the previous site whole; returns ``out``. Raises :class:`SiteError`, and
    leaves the previous site as it was, when a page would have a broken link."""
    from tqdm.auto import tqdm

    reports_dir, out = Path(reports_dir), Path(out).absolute()
    index_source = read_index_source(reports_dir)
    notebooks = report_notebooks(reports_dir, profiles)
    check_replaceable(out)
    remove_stale_partials(out.parent, out.name)  # leftovers of builds that were killed
    with atomic_dir(out) as partial:
        exporter = report_exporter()
        for notebook in tqdm(notebooks, desc="site", unit="notebook", disable=not progress):
            write_report_page(exporter, notebook, partial)
        pages = {page_path(notebook) for notebook in notebooks}
        (partial / "index.html").write_text(index_page(index_source, pages), encoding="utf-8")
        (partial / SITE_MARKER).write_text("built by `python -m replication site`; a rebuild replaces this "
                                           "folder whole\n", encoding="utf-8")
        problems = link_problems(partial)
        if problems:
            raise SiteError(f"the site would have {len(problems)} broken link(s), so the previous site is kept: "
                            + "; ".join(problems[:5]))
    return out
