"""The Textual console: live panels over one engine, embedded or attached over the control socket.

- ``link``      ``EngineLink``: what the app needs from an engine; ``EmbeddedLink`` (in-process) and
                ``RemoteLink`` (control socket: ``show`` polled at ~1 Hz plus the event stream)
- ``app``       ``LvsConsoleApp``: layout, actions, the event pump; ``app.tcss`` its one stylesheet
- ``widgets/``  one file per panel (header, VRRP, virtual servers, health log, command prompt)
- ``screens/``  modal screens (confirm, ask, quit, diff, editor, help, output)
- ``bindings``  every key binding with its id;  ``keymap``  keymaps/*.toml → Textual keymap
- ``palette``   command-palette providers (Ctrl+P)
- ``handoff``   hand an embedded engine to a background ``lvsconsole run --headless``
- ``cli``       ``lvsconsole [-f FILE]`` and ``lvsconsole attach`` entry points

Nothing in the engine imports this package.
"""
