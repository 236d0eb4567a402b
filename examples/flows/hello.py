"""A small flow: nested steps, tags, logs and a clean failure path.

Push it with ``hero_logic flow push examples/flows/hello.py`` and run it with
``hero_logic run hello -i who=Ada -i times=2``. Run it directly (``python hello.py``) and the
SDK is a silent pass-through.
"""

from hero_tracing import flow


@flow(inputs={"n": {"type": "integer", "required": True}})
def double(n):
    flow.current_span.tag(doubled=n * 2)
    return {"value": n * 2}


@flow(
    name="hello",
    description="Greets someone, after a few warm-up steps",
    inputs={
        "who": {"type": "string", "required": True, "description": "whom to greet"},
        "times": {"type": "integer", "default": 1, "description": "how many greetings"},
    },
    outputs={"greeting": "string", "warmup": "integer"},
)
def main(who, times=1):
    flow.current_span.log(f"greeting {who} {times} time(s)")
    with flow.step("warm-up", rounds=3):
        warmup = sum(double(n=i)["value"] for i in range(3))
    if not who.strip():
        raise flow.Failed("nobody to greet: pass a non-empty 'who'")
    return {"greeting": " ".join([f"hello {who}!"] * times), "warmup": warmup}


if __name__ == "__main__":
    print(main(who="world", times=2))
