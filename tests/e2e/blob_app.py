"""A tiny function app for testing the local host's blob trigger support."""

import azure.functions as func

app = func.FunctionApp()
seen: list[tuple[str, bytes]] = []


@app.function_name("blob_probe")
@app.blob_trigger(arg_name="blob", path="probe-inbound/{name}", connection="AzureWebJobsStorage", source="EventGrid")
def blob_probe(blob: func.InputStream) -> None:
    data = blob.read()
    if data.startswith(b"FAIL"):
        raise ValueError("this blob always fails")
    seen.append((blob.name or "", data))
