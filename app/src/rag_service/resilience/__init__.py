"""Circuit breakers, retries and the classification of dependency errors."""
