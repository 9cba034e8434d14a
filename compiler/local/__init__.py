"""`fbc up`: the whole application on one machine, from the same plan the templates come from.

sqs.py (an embedded SQS endpoint with the spec's queues), processes.py (child processes and one prefixed
log stream), workers.py (the profile's worker dispatch: an autoscaled poll pool, or one process per message
as a Pipe does), schedules.py (cron/rate firing and the sweeper), smoke.py (`--smoke`), up.py (start, wait,
stop in order).
"""
