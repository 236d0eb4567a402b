"""Reading a flow's signature statically: the service never runs a flow's source to learn it."""

from __future__ import annotations

import textwrap

import pytest

from hero_logic.sdk import FlowSignature, FlowSourceError, read_flow_signature


def read(source: str, entry: str | None = None) -> FlowSignature:
    return read_flow_signature(textwrap.dedent(source), entry)


def field(
    name: str,
    field_type: str,
    *,
    required: bool = True,
    default: object = None,
    description: str = "",
) -> dict[str, object]:
    return {
        "name": name,
        "field_type": field_type,
        "description": description,
        "required": required,
        "default": default,
    }


def test_declared_name_description_inputs_and_outputs_are_read() -> None:
    sig = read(
        """
        from hero_tracing import flow

        @flow(
            name="summarise",
            description="Summarise a text.",
            inputs={"text": {"type": "string", "description": "what to summarise"}, "words": {"type": "int", "default": 50}},
            outputs={"summary": "string"},
        )
        def run(text, words=50):
            return {"summary": text[:words]}
        """
    )
    assert sig == FlowSignature(
        entry_flow="summarise",
        description="Summarise a text.",
        inputs=[
            field("text", "string", description="what to summarise"),
            field("words", "integer", required=False, default=50),
        ],
        outputs=[field("summary", "string")],
        flows=("summarise",),
    )


def test_the_source_is_never_executed() -> None:
    sig = read(
        """
        import os
        os.system("touch /tmp/pwned-by-signature-reader")
        raise SystemExit(3)
        from hero_tracing import flow

        @flow
        def main(x: int): ...
        """
    )
    assert sig.entry_flow == "main"


def test_undeclared_inputs_come_from_the_parameters() -> None:
    sig = read(
        '''
        import hero_tracing

        @hero_tracing.flow
        async def fetch(self_url: str, retries: int = 3, ratio: float = 0.5, *, verbose: bool = False,
                        opts: dict | None = None, tags: "list[str]" = (), anything=None, limit=10):
            """Fetch a page.

            More detail that is not part of the summary.
            """
        '''
    )
    assert sig.entry_flow == "fetch"
    assert sig.description == "Fetch a page."
    assert sig.inputs == [
        field("self_url", "string"),
        field("retries", "integer", required=False, default=3),
        field("ratio", "number", required=False, default=0.5),
        field("verbose", "boolean", required=False, default=False),
        field("opts", "object", required=False),
        field("tags", "array", required=False, default=[]),
        field("anything", "string", required=False),
        field("limit", "integer", required=False, default=10),
    ]
    assert sig.outputs == []


def test_python_type_names_are_accepted_as_field_types() -> None:
    sig = read(
        """
        from hero_tracing import flow as hero_flow

        @hero_flow(inputs={"n": int, "items": "list"}, outputs={"ok": bool})
        def main(n, items): ...
        """
    )
    assert sig.inputs == [field("n", "integer"), field("items", "array")]
    assert sig.outputs == [field("ok", "boolean")]


def test_entry_is_the_only_flow_else_main_else_the_last() -> None:
    two = """
        from hero_tracing import flow

        @flow
        def helper(): ...

        @flow(name="main")
        def run(): ...

        @flow
        def later(): ...
        """
    sig = read(two)
    assert sig.entry_flow == "main"
    assert sig.flows == ("helper", "main", "later")
    assert read(two, entry="helper").entry_flow == "helper"
    assert read(two, entry="run").entry_flow == "main"  # the function name works too
    no_main = """
        from hero_tracing import flow

        @flow
        def first(): ...

        @flow
        def second(): ...

        def not_a_flow(): ...
        """
    assert read(no_main).entry_flow == "second"


@pytest.mark.parametrize(
    ("source", "line", "reason"),
    [
        ("def f(:\n    pass\n", 1, "syntax error"),
        ("def main():\n    return 1\n", 0, "define a function decorated with @flow"),
        (
            "from hero_tracing import flow\nFIELDS = {}\n@flow(\n    inputs=FIELDS)\ndef main(): ...\n",
            4,
            "inputs must be a literal",
        ),
        (
            "from hero_tracing import flow\n@flow(inputs={'x': 'text'})\ndef main(x): ...\n",
            2,
            "input 'x' has unknown type 'text': use one of string, number, integer, boolean, object, array",
        ),
        (
            "from hero_tracing import flow\n@flow(outputs={'y': {'type': 'tensor'}})\ndef main(): ...\n",
            2,
            "output 'y' has unknown type 'tensor'",
        ),
        (
            "from hero_tracing import flow\n@flow('main')\ndef main(): ...\n",
            2,
            "keyword arguments only",
        ),
        (
            "from hero_tracing import flow\n@flow(nmae='x')\ndef main(): ...\n",
            2,
            "unknown argument 'nmae'",
        ),
        (
            "from hero_tracing import flow\n@flow(name=3)\ndef main(): ...\n",
            2,
            "name must be a non-empty string",
        ),
        (
            "from hero_tracing import flow\n@flow(description=None)\ndef main(): ...\n",
            2,
            "description must be a string",
        ),
    ],
)
def test_unusable_sources_are_refused_with_line_and_reason(
    source: str, line: int, reason: str
) -> None:
    with pytest.raises(FlowSourceError) as caught:
        read_flow_signature(source)
    assert caught.value.line == line
    assert reason in caught.value.reason
    assert isinstance(caught.value, ValueError)


def test_an_unknown_entry_names_the_flows_there_are() -> None:
    with pytest.raises(FlowSourceError, match=r"no @flow named 'nope' \(flows defined: main\)"):
        read("from hero_tracing import flow\n@flow\ndef main(): ...\n", entry="nope")


def test_a_source_with_nul_bytes_is_refused_not_crashed_on() -> None:
    with pytest.raises(FlowSourceError):
        read_flow_signature("x = 1\0\n")
