"""The end-to-end demo behind ``knot demo``: a customer-churn pipeline on embedded defaults."""
