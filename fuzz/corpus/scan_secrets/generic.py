password = "changeme"
api_key = os.environ["API_KEY"]
secret = os.getenv("S")
token: "{{ vault }}"
client_secret = "aaaaaaaaaaaaaaaa"
