"""People's accept/reject decisions on records, the page that collects them, and how export applies them."""
