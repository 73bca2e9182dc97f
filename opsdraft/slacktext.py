"""Text from inputs made safe to show: in Slack (escaped per https://api.slack.com/reference/surfaces/formatting,
mentions and links neutralised) and on a terminal or in a log (control characters gone).

Escape the input pieces, not the final message: markup we build ourselves (links, `<@U…>` of the approver who
clicked, bold) is added around already escaped text, so it keeps working.
"""

from __future__ import annotations

import re

from redaction.controls import strip_controls

__all__ = ["escape", "plain", "strip_controls"]

# Slack broadcasts for "@channel" written plainly too when a client posts with link_names; inputs never may.
_BROADCAST = re.compile(r"(?<![\w.+-])@(?=(?:channel|here|everyone)\b)", re.IGNORECASE)
FULLWIDTH_AT = "\uff20"  # "＠channel": still readable, never a mention


def plain(text: str) -> str:
    """For Slack plain_text fields (headers, buttons, modal values): Slack shows them literally, so only what
    reorders or hides text goes."""
    return strip_controls(text)


def escape(text: str) -> str:
    """For Slack mrkdwn and message `text` built from input: `&`, `<`, `>` escaped (so `<!channel>`,
    `<@U123>`, `<#C123>` and `<http://evil|the fix>` show as typed and do nothing), plain @channel/@here/
    @everyone defused, control and bidi characters removed."""
    if not text:
        return text
    text = strip_controls(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _BROADCAST.sub(FULLWIDTH_AT, text)
