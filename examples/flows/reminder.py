"""Wait for a payment, remind once, give up after a day: durable time and events.

    hero_logic flow push examples/flows/reminder.py
    hero_logic run reminder -i order_id=42 --no-wait
    hero_logic events send payment:42 --payload '{"amount": 12.5}'

While it waits the play holds no process; the service wakes it for the reminder, for the
payment event, or at the deadline. See docs/time_and_events.md.
"""

from hero_tracing import flow


@flow(retries=3, retry_delay=5)
def send_reminder(order_id: str) -> str:
    """Send the reminder (a step: sent once, however often the play resumes)."""
    flow.current_span.log(f"reminder sent for order {order_id}")
    return "sent"


@flow(name="reminder", description="Waits for a payment, reminds once, gives up after a day", inputs={"order_id": {"type": "string", "required": True}})
def main(order_id: str):
    key = f"payment:{order_id}"
    branch, payment = flow.wait_any(timeout=3600, paid=flow.on_event(key))
    if branch == "timeout":
        send_reminder(order_id=order_id)
        branch, payment = flow.wait_any(
            timeout=23 * 3600,
            paid=flow.on_event(key),
            waived=flow.on_answer("Waive the payment?", schema={"type": "boolean"}),
        )
    return {"order_id": order_id, "outcome": branch, "payment": payment}
