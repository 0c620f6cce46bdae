"""Sphinx fixes for the course's website (loaded by site/_config.yml).

sphinx-thebe 0.3.1 adds its configuration script when the documents are
read, after the HTML builder has copied the registered scripts, so under
Sphinx 7 every page carries it twice and the second copy throws
"Identifier 'THEBE_JS_URL' has already been declared" in the browser.
sphinx-togglebutton's selector is repeated the same way. Each page keeps the
first copy of a repeated script.
"""


def _unique_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for script in scripts:
        # The copies differ only in a filename of None against "".
        attributes = getattr(script, "attributes", {}) or {}
        key = (
            getattr(script, "filename", None) or "",
            tuple(sorted(attributes.items())),
        )
        if key not in seen:
            seen.add(key)
            kept.append(script)
    scripts[:] = kept


def setup(app):
    # After every other handler: some add scripts per page.
    app.connect("html-page-context", _unique_scripts, priority=999)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
