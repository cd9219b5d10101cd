"""Jupyter's display ids, which evcxr has no call for: a display id's first output goes out
as display_data, the later ones as update_display_data (the frontend redraws that output
in place; a saved notebook keeps the last). mlp-core's live figures (relay.py) and the
crates compiling for a cell (progress.py) both show theirs through `Displays`."""


class Displays:
    def __init__(self, publish):
        self.publish = publish  # publish(msg_type, content, parent)
        self.shown = set()

    def show(self, display_id, data, parent):
        msg_type = "update_display_data" if display_id in self.shown else "display_data"
        self.shown.add(display_id)
        self.publish(msg_type, {"data": data, "metadata": {}, "transient": {"display_id": display_id}}, parent)
