"""Keywords that change the example application's mode (called from task setups)."""

from urllib.request import urlopen


def set_application_mode(url: str, mode: str) -> None:
    """Switch the invoice application to ``ok``, ``missing`` or ``broken``."""
    with urlopen(f"{url}/mode/{mode}", timeout=5) as response:
        response.read()
