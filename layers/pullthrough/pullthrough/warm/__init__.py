"""Warm runs: plan (planner), import through ECR (worker, importing), within the upstream pull budget (budget)."""
