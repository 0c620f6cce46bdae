"""What a learner's browser sees on the course's website (tests/test_site.py).

``serve`` serves a built site on localhost; ``check_page`` opens one page in
headless Chromium (Playwright) and returns what is wrong with it, as a list
of sentences: console errors and uncaught exceptions, responses that failed,
figures that did not decode, formulas left as raw TeX or typeset with an
error, internal links to a page or an anchor that does not exist.
"""

import contextlib
import functools
import http.server
import os
import pathlib
import re
import shutil
import threading
import urllib.parse

# TeX a reader should never see in the text of a page (outside code).
RAW_TEX = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$\$|\\begin\{|\\frac\{|\\mathbb\{|\\sum_")
# nbgrader's markers as they stand in a code cell (a line of their own), not
# as the instructors' guide names them in running text.
MARKER_LINE = re.compile(r'^\s*"?\s*#+\s*(BEGIN|END) (SOLUTION|HIDDEN TESTS)\b')

# The visible text of the page's article without code, typeset formulas and
# scripts: where raw TeX would show.
_PROSE_TEXT = """() => {
  const main = document.querySelector('main') || document.body;
  const copy = main.cloneNode(true);
  copy.querySelectorAll('pre, code, script, style, mjx-container, .highlight')
      .forEach(e => e.remove());
  copy.querySelectorAll('.cell_output').forEach(e => e.remove());
  return copy.textContent;
}"""

_FIGURES = """() => Array.from(document.querySelectorAll('main img')).map(i => ({
  src: i.getAttribute('src'), complete: i.complete, width: i.naturalWidth}))"""

_MATH = """() => ({
  nodes: document.querySelectorAll('main .math').length,
  untypeset: Array.from(document.querySelectorAll('main .math'))
      .filter(e => !e.querySelector('mjx-container'))
      .map(e => e.textContent.slice(0, 60)),
  typeset: document.querySelectorAll('main mjx-container').length,
  errors: Array.from(document.querySelectorAll('main mjx-merror'))
      .map(e => e.textContent.slice(0, 60)),
})"""

_LINKS = """() => Array.from(document.querySelectorAll(
  'a[href], link[rel=next][href], link[rel=prev][href]')).map(a => a.href)"""


def chromium_executable():
    """Chromium as Debian installs it (or $VAELIB_CHROMIUM); None when absent."""
    named = os.environ.get("VAELIB_CHROMIUM")
    if named:
        return named
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(html_root):
    """Serve ``html_root`` on a free localhost port; yield its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(html_root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _target_exists(html_root, base_url, href):
    """Whether an internal link's page (and its anchor) exist in the site."""
    url = urllib.parse.urlsplit(href)
    relative = urllib.parse.unquote(url.path)[
        len(urllib.parse.urlsplit(base_url).path) :
    ]
    target = pathlib.Path(html_root) / relative
    if target.is_dir():
        target = target / "index.html"
    if not target.is_file():
        return False
    if url.fragment and target.suffix == ".html":
        text = target.read_text(encoding="utf-8", errors="replace")
        anchor = re.escape(urllib.parse.unquote(url.fragment))
        return re.search(rf'\b(id|name)="{anchor}"', text) is not None
    return True


def check_page(browser, base_url, html_root, page_path, screenshot=None):
    """Open one page; return what is wrong with it and what it shows.

    A dict: ``problems`` (sentences; empty when the page is fine), ``figures``
    (images decoded) and ``formulas`` (formulas typeset).
    """
    problems, seen = [], {"figures": 0, "formulas": 0}
    page = browser.new_page()
    page.on(
        "console",
        lambda message: (
            problems.append(f"console error: {message.text}")
            if message.type == "error"
            else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(f"uncaught exception: {error}"))
    page.on(
        "requestfailed",
        lambda request: problems.append(
            f"request failed: {request.url} ({request.failure})"
        ),
    )
    page.on(
        "response",
        lambda response: (
            problems.append(f"HTTP {response.status}: {response.url}")
            if response.status >= 400
            else None
        ),
    )
    try:
        response = page.goto(base_url + page_path, wait_until="load")
        if response is None or response.status != 200:
            problems.append("did not load")
            return {"problems": [f"{page_path}: {p}" for p in problems], **seen}
        math = page.evaluate(_MATH)
        if math["nodes"]:
            page.wait_for_function(
                "() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                timeout=30_000,
            )
            page.evaluate("() => MathJax.startup.promise.then(() => true)")
            math = page.evaluate(_MATH)
            if not math["typeset"]:
                problems.append("formulas present but none typeset")
            problems += [f"formula not typeset: {text!r}" for text in math["untypeset"]]
            problems += [
                f"formula with a TeX error: {text!r}" for text in math["errors"]
            ]
            seen["formulas"] = math["typeset"]
        raw = RAW_TEX.findall(page.evaluate(_PROSE_TEXT))
        if raw:
            problems.append(f"raw TeX in the text: {sorted(set(raw))}")
        for figure in page.evaluate(_FIGURES):
            if figure["complete"] and figure["width"] > 0:
                seen["figures"] += 1
            else:
                problems.append(f"figure not decoded: {figure['src']}")
        for href in sorted(set(page.evaluate(_LINKS))):
            if href.startswith(base_url) and not _target_exists(
                html_root, base_url, href
            ):
                problems.append(f"broken internal link: {href[len(base_url) :]}")
        if screenshot is not None:
            page.screenshot(path=str(screenshot), full_page=False)
        page.wait_for_timeout(100)  # late console errors
    finally:
        page.close()
    return {"problems": [f"{page_path}: {p}" for p in problems], **seen}


def figures_expected(notebook):
    """How many PNG figures a notebook's stored outputs hold."""
    import nbformat

    cells = nbformat.read(notebook, as_version=4).cells
    return sum(
        "image/png" in output.get("data", {})
        for cell in cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    )


def has_math(source):
    """Whether a page's source (a notebook or Markdown file) has formulas."""
    text = pathlib.Path(source).read_text(encoding="utf-8")
    if source.suffix == ".ipynb":
        import nbformat

        cells = nbformat.read(source, as_version=4).cells
        text = "\n".join(cell.source for cell in cells if cell.cell_type == "markdown")
    text = re.sub(r"^(```|~~~).*?^\1", "", text, flags=re.S | re.M)  # code blocks
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code
    return re.search(r"\$[^$\n]+\$", text) is not None
