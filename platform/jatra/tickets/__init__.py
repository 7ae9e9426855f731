"""E-tickets: the view of a booking, its signed QR code, the PDF, and the render cache."""
