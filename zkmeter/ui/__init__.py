"""`zkmeter ui`: a read-only web dashboard for creators, payers and operators.

Server-rendered HTML (aiohttp and Jinja2 templates, no front-end build), charts as SVG by
matplotlib, and every figure read from the chain through `contracts.client.index.ChainIndex` (which
goes through `contracts.client.ChainClient`; nothing here imports web3). Modules:
`server` (routes, error pages, serving), `views` (what each page shows), `charts`,
`format` (amounts, times, addresses), `cli` (the `zkmeter ui` command and `demo --ui`).
"""
