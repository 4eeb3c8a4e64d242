"""The warning email sent before an inactive account is deleted. Pure text building."""

from dataclasses import dataclass
from html import escape

from cleanup_pipeline.core.decisions import Policy


@dataclass(frozen=True)
class WarningEmail:
    sender: str
    subject: str
    html: str
    text: str


def render_warning(
    product_name: str, app_url: str, email_domain: str, policy: Policy
) -> WarningEmail:
    """Build the message; every interpolated value is HTML-escaped in the HTML part."""
    product, url = escape(product_name, quote=True), escape(app_url, quote=True)
    inactive, limit, grace = policy.notify_after_days, policy.delete_after_days, policy.grace_days
    html = (
        "<html><body>"
        "<p>Hello,</p>"
        f"<p>Nobody has signed in to your {product} account for {inactive} days. "
        f"To keep storage tidy, {product} deletes accounts that stay inactive for {limit} days, "
        "together with everything stored in them.</p>"
        f"<p>If you would like to keep your account, simply open {product} within the next "
        f"{grace} days:</p>"
        f'<p><a href="{url}">{url}</a></p>'
        "<p>If you no longer need the account, there is nothing to do: it will be removed "
        "automatically.</p>"
        f"<p>Thank you for trying {product}.<br>The {product} team</p>"
        "</body></html>"
    )
    text = (
        f"Hello,\n\nNobody has signed in to your {product_name} account for {inactive} days. "
        f"{product_name} deletes accounts that stay inactive for {limit} days, together with "
        f"everything stored in them.\n\nTo keep your account, open {product_name} within the "
        f"next {grace} days: {app_url}\n\nThe {product_name} team\n"
    )
    return WarningEmail(
        sender=f"{product_name} <noreply@{email_domain}>",
        subject=f"Important: Your {product_name} Account is Scheduled for Deletion",
        html=html,
        text=text,
    )
