"""What the facades share (private): ``sessions``, the pool, request naming, the body limit and the statistics
call both sessions and the WebSocket user make; ``requests_adapter`` and ``requests_response``, requests' adapter and
responses for ``HttpSession`` (``locust_rs.clients``)."""
