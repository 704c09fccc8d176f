"""The agents app's part of /api/v1/: tools, runs and the customer-service bot's conversations."""

from agents.api.runs import urlpatterns as run_urls
from agents.conversations.api import urlpatterns as conversation_urls

urlpatterns = [*run_urls, *conversation_urls]
