package table

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// A claim is an item whose key is a unique value (an email, a username, a
// name) and whose `user` attribute names the holder: conditional writes on
// it make the value unique. A claim with a ttl belongs to an account not yet
// activated and is free once the ttl has passed.

// ClaimItem is the item of claim k held by holder (ttl 0: for good).
func ClaimItem(k map[string]types.AttributeValue, holder string, ttl int64) map[string]types.AttributeValue {
	item := map[string]types.AttributeValue{"pk": k["pk"], "sk": k["sk"], "user": S(holder)}
	if ttl > 0 {
		item["ttl"] = N(ttl)
	}
	return item
}

// claimFree is the condition for taking a claim: nobody holds it, or the
// holder's TTL has passed but DynamoDB has not yet swept it.
const claimFree = "attribute_not_exists(pk) OR (attribute_exists(#ttl) AND #ttl < :now)"

// TakeClaim is the transaction item that claims k for holder.
func TakeClaim(tableName string, k map[string]types.AttributeValue, holder string, ttl int64, now time.Time) types.TransactWriteItem {
	return types.TransactWriteItem{Put: &types.Put{TableName: aws.String(tableName), Item: ClaimItem(k, holder, ttl),
		ConditionExpression: aws.String(claimFree), ExpressionAttributeNames: map[string]string{"#ttl": "ttl"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": N(now.Unix())}}}
}

// TakeClaimFrom is the transaction item that claims k for holder over from
// (a holder being replaced).
func TakeClaimFrom(tableName string, k map[string]types.AttributeValue, holder, from string, ttl int64) types.TransactWriteItem {
	return types.TransactWriteItem{Put: &types.Put{TableName: aws.String(tableName), Item: ClaimItem(k, holder, ttl),
		ConditionExpression: aws.String("#user = :from"), ExpressionAttributeNames: map[string]string{"#user": "user"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":from": S(from)}}}
}

// ReleaseClaim is the transaction item that deletes holder's claim k; a
// claim already swept by TTL is no failure, one held by someone else is.
func ReleaseClaim(tableName string, k map[string]types.AttributeValue, holder string) types.TransactWriteItem {
	return types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String(tableName), Key: k,
		ConditionExpression:      aws.String("attribute_not_exists(pk) OR #user = :u"),
		ExpressionAttributeNames: map[string]string{"#user": "user"}, ExpressionAttributeValues: map[string]types.AttributeValue{":u": S(holder)}}}
}

// KeepClaim is the transaction item that makes holder's claim k permanent.
func KeepClaim(tableName string, k map[string]types.AttributeValue, holder string) types.TransactWriteItem {
	return types.TransactWriteItem{Update: &types.Update{TableName: aws.String(tableName), Key: k,
		UpdateExpression: aws.String("REMOVE #ttl"), ConditionExpression: aws.String("#user = :u"),
		ExpressionAttributeNames: map[string]string{"#ttl": "ttl", "#user": "user"}, ExpressionAttributeValues: map[string]types.AttributeValue{":u": S(holder)}}}
}
