"""What the notebooks need beyond the Lab: exercises and display helpers.

- ``exercises``: ``ensure``, ``check``, ``solve`` and ``reset`` for every lesson;
- ``states``: the lab as it is at the start of each lesson;
- ``probing``: the requests and reads the checks are made of;
- ``checks``: the checks of lessons 1-6 (Gloo); ``gatewayapi``: lesson 7's (kgateway);
- ``showing``: text laid out for a notebook (two YAML documents side by side).
"""
