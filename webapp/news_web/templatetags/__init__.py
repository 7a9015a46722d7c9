"""Template tag libraries of the news site."""
