"""`fbc graph`: the compiled architecture as a diagram.

model.py reads the built template and the plan into nodes, groups (region, VPC, subnet tiers) and edges
(who sends to whom); mermaid.py and dot.py render it (svg through Graphviz's dot).
"""
