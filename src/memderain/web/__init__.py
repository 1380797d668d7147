"""A small web page to try the model: FastAPI app + static HTML/JS (no build step).

``memderain serve`` runs :func:`memderain.web.server.create_app` with uvicorn. The static
files (index.html, app.js, style.css) live beside this module and ship as package data.
"""
