"""fbc in GitHub: the pull-request comment that carries `fbc diff --format markdown` (api: the few REST calls it
needs; comment: find-or-create by the body's hidden marker, and the step outputs from its summary line)."""
