"""A tiny function app whose functions fail, for testing that the local host survives them."""

import time

import azure.functions as func

app = func.FunctionApp()
fired: list[str] = []
handled: list[str] = []
started: list[str] = []


@app.function_name("boom_timer")
@app.timer_trigger(schedule="0 0 3 * * *", arg_name="timer", run_on_startup=False)
def boom_timer(timer: func.TimerRequest) -> None:
    fired.append("boom")
    raise OverflowError("date value out of range")


@app.function_name("later_timer")
@app.timer_trigger(schedule="0 30 3 * * *", arg_name="timer", run_on_startup=False)
def later_timer(timer: func.TimerRequest) -> None:
    fired.append("later")


@app.function_name("probe_worker")
@app.service_bus_queue_trigger(arg_name="msg", queue_name="probe-work", connection="ServiceBusConnection")
def probe_worker(msg: func.ServiceBusMessage) -> None:
    body = msg.get_body().decode()
    if "SLOW" in body:
        started.append(body)
        time.sleep(1.0)
    if "FAIL" in body:
        raise ValueError("this message always fails")
    handled.append(body)
