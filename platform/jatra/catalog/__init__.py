"""The catalog service: stations, trains, journeys and search."""
