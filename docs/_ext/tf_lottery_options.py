"""A Sphinx directive that writes the configuration reference from the option declarations.

``{tf-lottery-options}`` renders one table per section (run, model, data, training, method,
sweep, evaluation, runtime, each model builder's settings) from
:mod:`tf_lottery.config.reference`, the same declarations the flags and ``--help`` come from,
so the page cannot drift from the code.
"""

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("*", "\\*") if text else " "


class OptionsDirective(SphinxDirective):
    has_content = False

    def run(self):
        from tf_lottery.config import reference

        lines = []
        for title, declared in reference.option_groups():
            lines += [f".. rubric:: {title}", "", ".. list-table::", "   :header-rows: 1", "   :widths: 18 14 12 56", "",
                      "   * - flag", "     - type", "     - default", "     - meaning and allowed values"]
            for option in declared:
                about = reference.describe(option)
                meaning = about["help"] + (f" Allowed: {about['allowed']}." if about["allowed"] else "")
                lines += [f"   * - ``{about['flag']}``", f"     - {_cell(about['type'])}",
                          f"     - ``{about['default']}``", f"     - {_cell(meaning)}"]
            lines.append("")
        container = nodes.section()
        container.document = self.state.document
        self.state.nested_parse(StringList(lines, source="tf_lottery.config.reference"), self.content_offset, container)
        return container.children


def setup(app):
    app.add_directive("tf-lottery-options", OptionsDirective)
    return {"parallel_read_safe": True, "version": "1"}
