"""The README's code must run as written."""

import re

from helpers import ROOT


def test_readme_python_example_runs():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Use the losses in your own code", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["loss_fn"].v > 0 and namespace["predicted"].shape == (64,)


def test_readme_opens_with_the_two_commands():
    first_block = (ROOT / "README.md").read_text().split("```")[1]
    assert "make demo" in first_block and "make test" in first_block
