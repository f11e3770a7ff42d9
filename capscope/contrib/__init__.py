"""
Integrations with other libraries, each in its own module and each behind
its own optional extra: importing `capscope` never imports them.

- `capscope.contrib.celery`: carry the caller's scope to Celery workers
  (`pip install 'capscope[celery]'`).
- `capscope.contrib.dramatiq`: the same for Dramatiq
  (`pip install 'capscope[dramatiq]'`).
- `capscope.contrib.mcp`: MCP servers guarded per client session, MCP
  client sessions checked against the agent's scope, and the gateway
  behind `capscope mcp-proxy` (`pip install 'capscope[mcp]'`).
- `capscope.contrib.openai_agents`: OpenAI Agents SDK function tools, with
  asks as the SDK's approval interruptions
  (`pip install 'capscope[openai-agents]'`).
- `capscope.contrib.pydantic_ai`: Pydantic AI toolsets, with asks as
  deferred tool approvals (`pip install 'capscope[pydantic-ai]'`).
- `capscope.contrib.langchain`: LangChain tools and LangGraph runs, with
  asks as LangGraph interrupts (`pip install 'capscope[langchain]'`).
"""
