"""The reports as a web page (``python -m replication site``, ``make site``).

The site is built from the committed smoke reports (six notebooks, seconds) and checked on disk: a page
per executed notebook, every link and image resolving inside the site, nothing loaded from the network,
statuses coloured. Then headless Chromium (Debian's ``chromium`` and ``chromium-driver``, driven by
Selenium; no browser is downloaded) opens every page from ``file://``: each loads, each image decodes
(naturalWidth > 0), each internal link points at an existing file, no page logs a console error, and a
screenshot of the index is saved (its path is printed and recorded as the test's ``index_screenshot``
property). Without Chromium the browser tests skip with the reason; the rest still runs.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest
from PIL import Image

from replication import site
from replication.__main__ import main
from replication.claims.report import write_index
from replication.claims.rules import STATUSES
from replication.paths import REPO

REPORTS = REPO / "reports"
PROFILE = "smoke"
NO_CHROMIUM = "chromium not found: apt-get install chromium chromium-driver"


# ---------------------------------------------------------------------------
# Fixtures: the committed smoke reports' site, and a one-notebook reports folder of our own
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def smoke_site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site") / "site"
    return site.build_site(REPORTS, out, profiles=[PROFILE], progress=False)


@pytest.fixture
def tiny_reports(tmp_path) -> Path:
    """reports/smoke/01_architecture (notebook and claims JSON) alone, with its own index."""
    reports = tmp_path / "reports"
    (reports / PROFILE).mkdir(parents=True)
    for suffix in (".ipynb", ".json"):
        shutil.copy2(REPORTS / PROFILE / f"01_architecture{suffix}", reports / PROFILE)
    write_index(reports)
    return reports


def png_outputs(notebook: Path) -> int:
    nb = nbformat.read(notebook, as_version=4)
    return sum("image/png" in output.get("data", {}) for cell in nb.cells for output in cell.get("outputs", []))


# ---------------------------------------------------------------------------
# The site on disk
# ---------------------------------------------------------------------------

def test_site_has_the_index_and_a_page_per_executed_notebook(smoke_site):
    notebooks = sorted((REPORTS / PROFILE).glob("*.ipynb"))
    assert notebooks, "the committed smoke reports are missing"
    pages = sorted(p.relative_to(smoke_site).as_posix() for p in smoke_site.rglob("*.html"))
    assert pages == sorted(["index.html"] + [f"{PROFILE}/{nb.stem}.html" for nb in notebooks])
    for notebook in notebooks:  # the notebook and its claims JSON lie beside its page, for download
        assert (smoke_site / PROFILE / notebook.name).read_bytes() == notebook.read_bytes()
        assert (smoke_site / PROFILE / f"{notebook.stem}.json").is_file()
    assert (smoke_site / site.SITE_MARKER).is_file()


def test_every_link_and_image_resolves_inside_the_site(smoke_site):
    assert site.link_problems(smoke_site) == []


def test_report_pages_embed_every_figure_of_their_notebook(smoke_site):
    embedded = 0
    for notebook in sorted((REPORTS / PROFILE).glob("*.ipynb")):
        loaded, _ = site.page_references(smoke_site / PROFILE / f"{notebook.stem}.html")
        images = [url for url in loaded if url.startswith("data:image/png;base64,")]
        assert len(images) == png_outputs(notebook), notebook.name
        for url in images:
            Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).verify()
        embedded += len(images)
    assert embedded > 0, "the smoke reports draw figures: some page must embed them"


def test_no_page_loads_anything_from_the_network(smoke_site):
    for page in smoke_site.rglob("*.html"):
        loaded, _ = site.page_references(page)
        assert [u for u in loaded if urlsplit(u).scheme not in ("", "data")] == [], page.name


def test_index_colours_every_status_and_links_each_report(smoke_site):
    index = (smoke_site / "index.html").read_text(encoding="utf-8")
    recorded = {entry["status"] for path in REPORTS.glob("*/*.json")
                for entry in json.loads(path.read_text())["claims"]}
    for status in recorded:
        assert f'<td class="{site.status_class(status)}">{status}</td>' in index
    _, linked = site.page_references(smoke_site / "index.html")
    assert {f"{PROFILE}/{nb.stem}.html" for nb in (REPORTS / PROFILE).glob("*.ipynb")} <= set(linked)
    # the cpu reports are in reports/README.md but not in this smoke-only site: listed, not linked
    assert not [url for url in linked if url.startswith("cpu/")]
    assert 'class="not-in-site"' in index


def test_index_renderer_colours_each_status_and_kind():
    rows = [f"| `c{i}` | {kind} | {status} | [01_x](p/01_x.ipynb) |"
            for i, (kind, status) in enumerate(zip(["claim", "check", "erratum", "variant", "claim"], STATUSES))]
    markdown = "\n".join(["*reproduced* and *others*", "", "| Claim | Kind | Status | Report |",
                          "|---|---|---|---|", *rows, "", "[missing](q/02_y.ipynb) [web](https://example.org)"])
    page = site.index_page(markdown, {"p/01_x.html"})
    for status in STATUSES:
        assert f'<td class="{site.status_class(status)}">{status}</td>' in page
    for kind in ("claim", "check", "erratum", "variant"):
        assert f'<td class="kind-{kind}">{kind}</td>' in page
    assert '<em class="status-reproduced">reproduced</em>' in page and "<em>others</em>" in page
    assert page.count('<a href="p/01_x.html">01_x</a>') == len(STATUSES) + 1  # the rows and the page list
    assert '<span class="not-in-site" title="not in this site">missing</span>' in page
    assert '<a href="https://example.org">web</a>' in page


def test_site_link_maps_notebooks_to_their_pages():
    pages = {"cpu/01_a.html"}
    assert site.site_link("cpu/01_a.ipynb", pages) == "cpu/01_a.html"
    assert site.site_link("./cpu/01_a.ipynb#verdict", pages) == "cpu/01_a.html#verdict"
    assert site.site_link("smoke/01_a.ipynb", pages) is None
    assert site.site_link("../replication/claims/rules.py", pages) is None
    assert site.site_link("https://example.org/x", pages) == "https://example.org/x"


def test_link_problems_finds_each_kind_of_broken_link(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "here.png").write_bytes(b"png")
    (tmp_path / "sub" / "page.html").write_text(
        '<a href="../here.png">ok</a> <a href="#top">ok</a> <a href="https://example.org">ok</a>'
        '<img src="data:image/png;base64,AAAA"> <img src="../gone.png"> <a href="/etc/passwd">x</a>'
        '<script src="https://cdn.example.org/x.js"></script> <a href="../../outside.html">x</a>')
    problems = site.link_problems(tmp_path)
    assert [p.split(": ")[-1] for p in problems] == [
        "no such file in the site", "not a relative link", "not a relative link", "outside the site"]


# ---------------------------------------------------------------------------
# Building: atomic, never replacing what it did not build
# ---------------------------------------------------------------------------

def test_rebuild_replaces_the_previous_site_whole(tiny_reports, tmp_path):
    out = tmp_path / "site"
    site.build_site(tiny_reports, out, progress=False)
    (out / "stale.html").write_text("from an older build")
    site.build_site(tiny_reports, out, progress=False)
    assert not (out / "stale.html").exists()
    assert (out / PROFILE / "01_architecture.html").is_file()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".partial-")]


def test_a_folder_it_did_not_build_is_left_alone(tiny_reports, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(site.SiteError, match="not a site built by"):
        site.build_site(tiny_reports, out, progress=False)
    assert (out / "notes.txt").read_text() == "keep me"


def test_a_page_with_a_broken_link_keeps_the_previous_site(tiny_reports, tmp_path):
    out = site.build_site(tiny_reports, tmp_path / "site", progress=False)
    before = (out / "index.html").read_text()
    notebook_path = tiny_reports / PROFILE / "01_architecture.ipynb"
    notebook = nbformat.read(notebook_path, as_version=4)
    notebook.cells.append(nbformat.v4.new_markdown_cell("![a figure nobody saved](missing_figure.png)"))
    nbformat.write(notebook, notebook_path)
    with pytest.raises(site.SiteError, match="missing_figure.png"):
        site.build_site(tiny_reports, out, progress=False)
    assert (out / "index.html").read_text() == before
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".partial-")]


def test_cli_builds_the_site_and_names_an_unknown_profile(tiny_reports, tmp_path, capsys):
    out = tmp_path / "site"
    assert main(["site", "--reports", str(tiny_reports), "--out", str(out)]) == 0
    assert str(out / "index.html") in capsys.readouterr().out
    assert main(["site", "--reports", str(tiny_reports), "--out", str(out), "--profile", "cpu"]) == 1
    error = capsys.readouterr().err
    assert "profile cpu" in error and "reproduce --profile cpu" in error


def test_a_missing_index_names_the_command_that_writes_it(tiny_reports, tmp_path):
    (tiny_reports / "README.md").unlink()
    with pytest.raises(site.SiteError, match="--index-only"):
        site.build_site(tiny_reports, tmp_path / "site", progress=False)


# ---------------------------------------------------------------------------
# In the browser: headless Chromium from Debian's packages, driven by Selenium
# ---------------------------------------------------------------------------

def chromium_paths() -> tuple[str | None, str | None]:
    browser = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    return browser, shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser():
    browser_path, driver_path = chromium_paths()
    if not (browser_path and driver_path):
        pytest.skip(NO_CHROMIUM)
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = browser_path
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1800"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The service's driver path keeps Selenium Manager from looking for (or downloading) a driver.
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


_PAGE_STATE = """
return {
  ready: document.readyState,
  title: document.title,
  images: Array.from(document.images).map(i => [i.getAttribute('src').slice(0, 60), i.complete, i.naturalWidth]),
  links: Array.from(document.querySelectorAll('a[href]')).map(a => [a.getAttribute('href'), a.href]),
};
"""


def page_problems(driver, page: Path, site_dir: Path) -> tuple[list[str], list[str]]:
    """(problems, pages linked) of one page opened from file://: not loaded, an image that does not
    decode, an internal link to a missing file or out of the site, a console error."""
    driver.get(page.as_uri())
    state = driver.execute_script(_PAGE_STATE)
    name = page.relative_to(site_dir).as_posix()
    problems = [] if state["ready"] == "complete" and state["title"] else [f"{name}: did not load"]
    problems += [f"{name}: image {src}... does not decode" for src, complete, width in state["images"]
                 if not complete or width <= 0]
    linked = []
    for raw, resolved in state["links"]:
        if urlsplit(raw).scheme in ("http", "https", "mailto"):
            continue  # external links
        url = urlsplit(resolved)
        target = Path(unquote(url.path))
        if url.scheme != "file" or not target.is_relative_to(site_dir):
            problems.append(f"{name}: link {raw} leaves the site")
        elif not target.exists():
            problems.append(f"{name}: link {raw} points at a missing file")
        elif target.suffix == ".html":
            linked.append(target)
    problems += [f"{name}: console {entry['level']}: {entry['message']}" for entry in driver.get_log("browser")
                 if entry["level"] == "SEVERE"]
    return problems, linked


def test_page_problems_catches_what_a_reader_would_see(browser, tmp_path):
    page = tmp_path / "bad.html"
    page.write_text('<html><head><title>bad</title></head><body><img src="gone.png">'
                    '<a href="missing.html">x</a><script>console.error("boom")</script></body></html>')
    problems, _ = page_problems(browser, page, tmp_path)
    assert any("image gone.png" in p for p in problems)
    assert any("missing.html points at a missing file" in p for p in problems)
    assert any("boom" in p for p in problems)


def test_every_page_loads_in_chromium_without_errors(browser, smoke_site, tmp_path, record_property):
    site_dir = smoke_site.resolve()
    seen, queue, problems, images = set(), [site_dir / "index.html"], [], 0
    while queue:  # every page reachable from the index
        page = queue.pop()
        if page in seen:
            continue
        seen.add(page)
        page_found, linked = page_problems(browser, page, site_dir)
        problems += page_found
        images += browser.execute_script("return document.images.length")
        queue += [p for p in linked if p not in seen]
    assert problems == []
    assert seen == set(site_dir.rglob("*.html")), "a page the index does not reach"
    assert images >= sum(png_outputs(nb) for nb in (REPORTS / PROFILE).glob("*.ipynb"))

    browser.get((site_dir / "index.html").as_uri())
    colours = browser.execute_script(
        "const seen = {}; document.querySelectorAll('td[class^=\"status-\"]').forEach("
        "td => { seen[td.className] = getComputedStyle(td).backgroundColor; }); return seen;")
    assert len(colours) >= 3 and len(set(colours.values())) == len(colours), colours  # one colour a status
    assert "rgba(0, 0, 0, 0)" not in colours.values()
    screenshot = tmp_path / "index.png"
    assert browser.save_screenshot(str(screenshot))
    assert Image.open(screenshot).size[0] > 0
    record_property("index_screenshot", str(screenshot))
    print(f"screenshot of the index: {screenshot}")
