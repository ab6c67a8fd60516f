from flask import Flask

from bharatsend_flask import BharatSend

app = Flask(__name__)
app.config["BHARATSEND_DATABASE_URL"] = "sqlite:///sms.db"
app.config["BHARATSEND_KEY_PEPPER"] = "a-long-server-side-secret"
bharatsend = BharatSend(app)  # the v1 API is now served by this app
