"""A Jupyter client over a server's websocket (the way JupyterLab talks to a kernel,
through the hub's proxy when there is one): run a notebook's code cells in a fresh kernel
and record their outputs as nbformat outputs, as a saved notebook would hold them."""

import asyncio
import datetime
import json
import time
import uuid

import nbformat
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from support.http import request, server_url


def message(session, code):
    return {"header": {"msg_id": uuid.uuid4().hex, "username": "hub-test", "session": session,
                       "msg_type": "execute_request", "version": "5.3",
                       "date": datetime.datetime.now(datetime.UTC).isoformat()},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True}}


async def run_notebook(base, user, token, nb, timings, before_end=None):
    """Every code cell of `nb` in a new kernel, its outputs recorded in `nb`; the kernel
    ended afterwards (`before_end()` called just before)."""
    server = server_url(base, user)
    status, kernel = request(server + "/api/kernels", token, "POST", {"name": "rust"})
    if status != 201:
        raise RuntimeError("starting a kernel: %s %s" % (status, kernel))
    url = "%s/api/kernels/%s/channels" % (server.replace("http", "ws", 1), kernel["id"])
    # (the server answers once the kernel has replied to kernel_info: give it time)
    ws = await websocket_connect(HTTPRequest(url, headers={"Authorization": "token " + token},
                                             connect_timeout=300, request_timeout=300))
    session = uuid.uuid4().hex
    try:
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            msg = message(session, cell.source)
            ws.write_message(json.dumps(msg))
            reply = idle = False
            while not (reply and idle):
                raw = await asyncio.wait_for(ws.read_message(), 900)
                if raw is None:
                    raise RuntimeError("the kernel's websocket closed")
                m = json.loads(raw)
                if m.get("parent_header", {}).get("msg_id") != msg["header"]["msg_id"]:
                    continue
                kind, content = m["header"]["msg_type"], m["content"]
                if kind == "execute_reply":
                    reply = True
                    timings.setdefault("first_cell", time.time())
                    cell.execution_count = content.get("execution_count")
                elif kind == "status" and content["execution_state"] == "idle":
                    idle = True
                elif kind == "clear_output":
                    cell.outputs = []
                elif kind == "stream":
                    cell.outputs.append(nbformat.v4.new_output("stream", name=content["name"], text=content["text"]))
                elif kind in ("execute_result", "display_data"):
                    out = nbformat.v4.new_output(kind, data=content["data"], metadata=content.get("metadata", {}))
                    if kind == "execute_result":
                        out.execution_count = content.get("execution_count")
                    cell.outputs.append(out)
                elif kind == "error":
                    cell.outputs.append(nbformat.v4.new_output("error", ename=content["ename"],
                                                               evalue=content["evalue"],
                                                               traceback=content["traceback"]))
                if kind in ("stream", "execute_result", "display_data", "error") and "first_output" not in timings:
                    timings["first_output"] = time.time()
        if before_end:
            before_end()
    finally:
        ws.close()
        request("%s/api/kernels/%s" % (server, kernel["id"]), token, "DELETE")
    timings["done"] = time.time()


def run_cell(base, user, token, code):
    """One cell in a fresh kernel of `user`'s server at `base`: its printed text."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    asyncio.run(run_notebook(base, user, token, nb, {}))
    return "".join(o.get("text", "") + o.get("evalue", "") for o in nb.cells[0].outputs)

