"""`fbc cost`: a monthly estimate of a compiled stack, idle and usage, at list price and after AWS's
always-free allowances.

prices.yaml (the data: per-region list prices with their sources, the Spot discount, the allowances),
prices.py (loading it), usage.py (what traffic to assume), estimate.py (one pricer per CloudFormation
resource type, cfn-lint-rule style, over the built template and the plan), report.py (text and JSON).
"""
