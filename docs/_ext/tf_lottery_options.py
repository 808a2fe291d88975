"""A Sphinx directive that writes the configuration reference from the option declarations.

``{tf-lottery-options}`` renders one Markdown table per section (run, model, data, training, method,
sweep, evaluation, runtime, each model builder's settings) from
:mod:`tf_lottery.config.reference`, the same declarations the flags and ``--help`` come from,
so the page cannot drift from the code.
"""

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective


def _cell(text: str) -> str:
    """A table cell's text, with what Markdown would read as markup escaped."""
    return text.replace("|", "\\|").replace("*", "\\*").replace("_", "\\_") if text else " "


class OptionsDirective(SphinxDirective):
    has_content = False

    def run(self):
        from tf_lottery.config import reference

        # Markdown, which MyST parses (nested_parse runs the page's own parser): a bold title and a
        # pipe table per group.
        lines = []
        for title, declared in reference.option_groups():
            head, _, flags = title.partition(": ")  # "criterion options: --criterion=grasp": the flags as code
            shown = f"**{head}:** `{flags}`" if flags else f"**{title}**"
            lines += [shown, "", "| flag | type | default | meaning and allowed values |",
                      "|---|---|---|---|"]
            for option in declared:
                about = reference.describe(option)
                meaning = about["help"] + (f" Allowed: {about['allowed']}." if about["allowed"] else "")
                lines.append(f"| `{about['flag']}` | {_cell(about['type'])} | `{about['default']}` | {_cell(meaning)} |")
            lines.append("")
        container = nodes.section()
        container.document = self.state.document
        self.state.nested_parse(StringList(lines, source="tf_lottery.config.reference"), self.content_offset, container)
        return container.children


def setup(app):
    app.add_directive("tf-lottery-options", OptionsDirective)
    return {"parallel_read_safe": True, "version": "1"}
