"""What the notebooks need beyond the Lab: exercises and display helpers.

- ``exercises``: ``ensure``, ``check``, ``solve`` and ``reset`` for every lesson;
- ``states``: the lab as it is at the start of each lesson;
- ``probing``: the requests and reads the checks are made of;
- ``inforce``: ``serves``, the probe ``lab.wait_in_force`` asks after a route change;
- ``served``: what each lesson's state serves, which set-up, reset, solve and checks wait for;
- ``checks``: the checks of lessons 1-6 (Gloo); ``gatewayapi``: lesson 7's (kgateway);
- ``progressive``: lesson 8's set-up and exercise (a Flagger Canary);
- ``promql``: lesson 9's set-up, the Gateway's stats page read as Prometheus reads it, its exercise;
- ``showing``: text laid out for a notebook (two YAML documents side by side).
"""
