"""
Integrations with other libraries, each in its own module and each behind
its own optional extra: importing `capscope` never imports them.

- `capscope.contrib.celery`: carry the caller's scope to Celery workers
  (`pip install 'capscope[celery]'`).
"""
