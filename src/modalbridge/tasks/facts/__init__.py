"""Fact linking (spec ``fact_linking.md``): open-IE surface triples → knowledge-graph facts (FaLB)."""
