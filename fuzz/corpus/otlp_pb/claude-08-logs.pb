
Ê

ˆ

	host.arch
amd64

os.type
linux


os.version
6.18.44-fc-v445

service.name
claude-code

service.version	
2.1.197¼	
+
 com.anthropic.claude_code.events2.1.197Š	@°Ï||/ê*
claude_code.api_request2M
user.idB
@4694d9c0dd3986fb71149dc593d1444d5d993d3affa8217d3f010e76cfba216a24

session.id&
$f208688d-e267-4cd9-9c35-21424ddbb7072
terminal.type
dumb2

event.name
api_request2-
event.timestamp
2026-11-21T22:20:13.177Z2
event.sequence23
	prompt.id&
$5c5493c9-3063-43e9-9cec-59525ec7f4752
model
claude-opus-4-82
input_tokensþ2
output_tokens2
cache_read_tokensÔ2
cache_creation_tokensx2
cost_usd	!Ï:¯±K”?2
cost_usd_microsìš2
duration_msÃ2)

request_id
req_mock_d533bea80c9643682
speed
normal2
query_source
sdk2
effort
highY@°Ï||/êÿ	@°Ï||/ê* 
claude_code.assistant_response2M
user.idB
@4694d9c0dd3986fb71149dc593d1444d5d993d3affa8217d3f010e76cfba216a24

session.id&
$f208688d-e267-4cd9-9c35-21424ddbb7072
terminal.type
dumb2"

event.name
assistant_response2-
event.timestamp
2026-11-21T22:20:13.177Z2
event.sequence23
	prompt.id&
$5c5493c9-3063-43e9-9cec-59525ec7f4752
response_length2
response

<REDACTED>2)

request_id
req_mock_d533bea80c9643682
model
claude-opus-4-82
query_source
sdkY@°Ï||/ê